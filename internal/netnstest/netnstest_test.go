package netnstest

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The pair's two ends reach each other, In runs code inside a namespace,
// and cleanup deletes both namespaces.
func TestPair(t *testing.T) {
	var p *Pair
	t.Run("pair", func(t *testing.T) {
		p = New(t)
		// A socket keeps the namespace it was made in.
		var srv *net.UDPConn
		err := In(p.Server, func() error {
			if _, err := net.InterfaceByName(p.ServerIf); err != nil {
				return err
			}
			var err error
			srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(p.ServerIP), Port: 4242})
			return err
		})
		if err != nil {
			t.Fatalf("the server end in %s: %v", p.Server, err)
		}
		defer srv.Close()
		err = In(p.Client, func() error {
			c, err := net.Dial("udp4", p.ServerIP+":4242")
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("hello"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		n, from, err := srv.ReadFromUDP(buf)
		if err != nil || string(buf[:n]) != "hello" || from.IP.String() != p.ClientIP {
			t.Fatalf("server read %q from %v: %v", buf[:n], from, err)
		}
		if _, err := net.InterfaceByName(p.ServerIf); err == nil {
			t.Fatalf("%s is visible outside its namespace", p.ServerIf)
		}
	})
	if p == nil {
		return
	}
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), p.Server) || strings.Contains(string(out), p.Client) {
		t.Errorf("namespaces left after cleanup:\n%s", out)
	}
}
