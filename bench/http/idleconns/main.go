// Command idleconns opens N keep-alive HTTP/1.1 connections to an address,
// makes one request on each, then holds them idle until stdin closes or
// -hold expires; it prints "ready N" once all are open. bench/http.sh uses
// it to measure a server's resident memory per idle connection.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address")
	n := flag.Int("n", 10000, "connections")
	path := flag.String("path", "/", "request path")
	hold := flag.Duration("hold", 30*time.Second, "how long to hold the connections at most")
	perSource := flag.Int("per-source", 1000, "connections per source address (127.0.2.x): offedge caps one client address at 1,024")
	flag.Parse()
	conns := make([]net.Conn, 0, *n)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < *n; i++ {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "idleconns: gave up after %d connections\n", i)
			os.Exit(1)
		}
		// Spread the connections over loopback sources, as many clients
		// would: a server that caps connections per client address (offedge
		// does, at 1,024) must not refuse the measurement itself.
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(1 + i / *perSource))}
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: src}
		c, err := d.Dial("tcp", *addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "idleconns: connection %d: %v\n", i, err)
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", *path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "idleconns: connection %d: %v\n", i, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	fmt.Printf("ready %d\n", len(conns))
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(*hold):
	}
	for _, c := range conns {
		c.Close()
	}
}
