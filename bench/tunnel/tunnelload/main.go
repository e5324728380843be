// Command tunnelload is the load side of bench/tunnel.sh: a sink server and
// two bounded clients.
//
//	tunnelload sink  -listen ADDR                 serve the bench protocol
//	tunnelload bulk  -addr ADDR -bytes N          send N bytes, wait for the sink's count
//	tunnelload conns -addr ADDR -duration D -c C  open, exchange one byte, close; C at a time
//	                 [-sources N]                 from 127.0.1.1 … 127.0.1.N, one per client in turn
//	tunnelload wait  -addr ADDR                   wait (≤10 s) until ADDR accepts connections
//	tunnelload freeport                           print a loopback port free a moment ago
//
// Protocol: the client's first byte is 'B' (bulk: the sink reads to EOF and
// answers the byte count as 8 big-endian bytes) or 'E' (echo until EOF).
// Results are printed as one line of key=value pairs.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tunnelload sink|bulk|conns [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "sink: listen address")
	addr := fs.String("addr", "", "client: address to connect to")
	total := fs.Int64("bytes", 2<<30, "bulk: bytes to send")
	duration := fs.Duration("duration", 3*time.Second, "conns: how long to run")
	conc := fs.Int("c", 16, "conns: concurrent connections")
	maxConns := fs.Int64("max", 1_000_000, "conns: stop after this many connections")
	sources := fs.Int("sources", 0, "conns: connect from this many source addresses, 127.0.1.1 up (0: the kernel chooses)")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "sink":
		err = sink(*listen)
	case "bulk":
		err = bulk(*addr, *total)
	case "conns":
		err = conns(*addr, *duration, *conc, *maxConns, *sources)
	case "wait":
		err = waitPort(*addr)
	case "freeport":
		var ln net.Listener
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err == nil {
			fmt.Println(ln.Addr().(*net.TCPAddr).Port)
			ln.Close()
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunnelload:", err)
		os.Exit(1)
	}
}

func sink(listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			var mode [1]byte
			if _, err := io.ReadFull(c, mode[:]); err != nil {
				return
			}
			switch mode[0] {
			case 'B':
				n, _ := io.Copy(io.Discard, c)
				c.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
			case 'E':
				io.Copy(c, c)
			}
		}()
	}
}

func bulk(addr string, total int64) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	start := time.Now()
	if _, err := c.Write([]byte{'B'}); err != nil {
		return err
	}
	for sent := int64(0); sent < total; {
		n := min(int64(len(buf)), total-sent)
		m, err := c.Write(buf[:n])
		sent += int64(m)
		if err != nil {
			return err
		}
	}
	c.(*net.TCPConn).CloseWrite()
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("reading the sink's count: %w", err)
	}
	el := time.Since(start)
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != total {
		return fmt.Errorf("sink received %d bytes; sent %d", got, total)
	}
	fmt.Printf("bytes=%d seconds=%.4f mib_per_s=%.1f\n", total, el.Seconds(), float64(total)/(1<<20)/el.Seconds())
	return nil
}

// conns runs conc clients in a loop until d or limit. With sources, client
// i connects from 127.0.1.(1 + i mod sources), bound without a port
// (IP_BIND_ADDRESS_NO_PORT): at some 14,000 connections a second, one
// source address toward one destination runs through its 28,232
// ephemeral ports in two seconds, and the TIME_WAIT left by earlier
// rounds (60 s) makes connect search for free ones on the load side, or
// fail, whatever the system under test.
func conns(addr string, d time.Duration, conc int, limit int64, sources int) error {
	if sources < 0 || sources > 254 {
		return fmt.Errorf("-sources %d: between 0 and 254", sources)
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conc {
		dialer := net.Dialer{Timeout: 5 * time.Second}
		if sources > 0 {
			dialer.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%sources))}
			dialer.Control = bindNoPort
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2)
			for time.Now().Before(deadline) && ok.Load()+failed.Load() < limit {
				if err := oneConn(&dialer, addr, buf); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("conns=%d failed=%d seconds=%.3f conns_per_s=%.1f\n", ok.Load(), failed.Load(), el.Seconds(), float64(ok.Load())/el.Seconds())
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "first error:", e)
	}
	if ok.Load() == 0 {
		return errors.New("no connection succeeded")
	}
	return nil
}

func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

func oneConn(d *net.Dialer, addr string, buf []byte) error {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("Ex")); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		return err
	}
	if buf[0] != 'x' {
		return fmt.Errorf("bad echo %q", buf[0])
	}
	return nil
}

func waitPort(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting after 10s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
