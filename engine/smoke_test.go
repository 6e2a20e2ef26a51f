package engine

import (
	"errors"
	"testing"
)

func TestSmoke(t *testing.T) {
	e := openTest(t, Options{})
	if err := e.Set([]byte("a"), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	v, err := e.Get([]byte("a"))
	if err != nil || string(v) != "hello" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if _, err := e.Get([]byte("b")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(b) err = %v", err)
	}
}
