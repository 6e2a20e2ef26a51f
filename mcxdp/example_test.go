package mcxdp_test

import (
	"fmt"
	"log"

	"github.com/bpfdb/bpfdb/engine"
	"github.com/bpfdb/bpfdb/mcudp"
	"github.com/bpfdb/bpfdb/mcxdp"
)

// An embedded store answering memcached gets in XDP on eth0, with the
// user-space server taking what XDP passes up on the same port.
func ExampleAttach() {
	db, err := engine.Open(engine.Options{Dir: "/var/lib/bpfdb"})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	mc, err := mcudp.Listen(db, ":11211", "example")
	if err != nil {
		log.Fatal(err)
	}
	go mc.Serve()
	defer mc.Close()
	fe, err := mcxdp.Attach(db, mcxdp.Config{Interface: "eth0", Port: 11211})
	if err != nil {
		log.Fatal(err)
	}
	defer fe.Close() // detached before mc and db close
	counters, err := fe.Counters()
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range counters {
		fmt.Println(c.Name, c.Value)
	}
}
