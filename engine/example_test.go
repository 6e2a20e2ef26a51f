package engine_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/bpfdb/bpfdb/engine"
)

// A transfer between two accounts as an interactive transaction, retried
// when no-wait locking reports a conflict.
func Example() {
	db, err := engine.Open(engine.Options{MaxKeys: 1024})
	if err != nil {
		log.Fatal(err) // engine.ErrNotPermitted without root
	}
	defer db.Close()

	db.Set([]byte("alice"), []byte("100"))
	db.Set([]byte("bob"), []byte("0"))

	for {
		txn, err := db.Begin()
		if err != nil {
			log.Fatal(err)
		}
		a, _ := txn.Get([]byte("alice"))
		b, _ := txn.Get([]byte("bob"))
		var av, bv int
		fmt.Sscan(string(a), &av)
		fmt.Sscan(string(b), &bv)
		txn.Set([]byte("alice"), []byte(fmt.Sprint(av-10)))
		txn.Set([]byte("bob"), []byte(fmt.Sprint(bv+10)))
		err = txn.Commit()
		if errors.Is(err, engine.ErrConflict) {
			continue // aborted by no-wait locking: nothing applied, try again
		}
		if err != nil {
			log.Fatal(err)
		}
		break
	}
}

// Many independent operations in one chain run.
func ExampleEngine_Batch() {
	db, err := engine.Open(engine.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ops := []engine.Op{
		{Kind: engine.OpSet, Key: []byte("k1"), Value: []byte("v1")},
		{Kind: engine.OpGet, Key: []byte("k1")},
		{Kind: engine.OpDelete, Key: []byte("missing")},
	}
	if err := db.Batch(ops); err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(ops[1].Value), errors.Is(ops[2].Err, engine.ErrNotFound))
}

// The same transfer in two chain runs: one reads both balances, taking
// their exclusive locks at once (ForUpdate), one writes both and commits.
func ExampleTxn_CommitWith() {
	db, err := engine.Open(engine.Options{MaxKeys: 1024})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.Set([]byte("alice"), []byte("100"))
	db.Set([]byte("bob"), []byte("0"))

	for {
		txn, err := db.Begin()
		if err != nil {
			log.Fatal(err)
		}
		reads := []engine.Op{
			{Kind: engine.OpGet, Key: []byte("alice"), ForUpdate: true},
			{Kind: engine.OpGet, Key: []byte("bob"), ForUpdate: true},
		}
		if err = txn.Run(reads); err == nil {
			var a, b int
			fmt.Sscan(string(reads[0].Value), &a)
			fmt.Sscan(string(reads[1].Value), &b)
			err = txn.CommitWith([]engine.Op{
				{Kind: engine.OpSet, Key: []byte("alice"), Value: []byte(fmt.Sprint(a - 10))},
				{Kind: engine.OpSet, Key: []byte("bob"), Value: []byte(fmt.Sprint(b + 10))},
			})
		}
		if errors.Is(err, engine.ErrConflict) {
			continue // nothing applied: run it again
		}
		if err != nil {
			log.Fatal(err)
		}
		break
	}
}

// Every key and value one snapshot sees, while writers go on.
func ExampleEngine_Scan() {
	db, err := engine.Open(engine.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.Set([]byte("a"), []byte("1"))

	n := 0
	db.Scan(func(*engine.Item) bool {
		n++
		return true // false stops the scan
	})
	fmt.Println(n, "keys")
}
