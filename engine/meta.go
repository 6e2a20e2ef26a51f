package engine

import (
	"bytes"
	"sync"
)

// metaStore is what an engine without a log keeps of SetMeta: memory only,
// as its data.
type metaStore struct {
	mu   sync.Mutex
	vals map[string][]byte
}

// SetMeta stores value under name beside the data, durably (synced to the
// log's directory) before it returns when the engine has one: for what a
// user of the store keeps outside any transaction (the server's names of
// databases, SWAPDB). A value is at most a few kilobytes.
func (e *Engine) SetMeta(name string, value []byte) error {
	if e.log != nil {
		return e.log.SetMeta(name, value)
	}
	e.meta.mu.Lock()
	defer e.meta.mu.Unlock()
	if e.meta.vals == nil {
		e.meta.vals = map[string][]byte{}
	}
	e.meta.vals[name] = bytes.Clone(value)
	return nil
}

// Meta returns what SetMeta stored under name, or nil.
func (e *Engine) Meta(name string) ([]byte, error) {
	if e.log != nil {
		return e.log.Meta(name)
	}
	e.meta.mu.Lock()
	defer e.meta.mu.Unlock()
	return bytes.Clone(e.meta.vals[name]), nil
}
