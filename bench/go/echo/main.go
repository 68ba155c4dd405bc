// go-echo: TCP echo peer on Go's standard net package (a goroutine per
// connection, scheduled by Go's netpoller). Every byte read is written back.
//
//	GOMAXPROCS=1 go-echo -addr 127.0.0.1:7000
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go-echo: listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			continue // out of descriptors and the like: keep serving
		}
		go serve(c)
	}
}

func serve(c net.Conn) {
	defer c.Close()
	// 4 KiB like the tokio peer: a 4 KiB message is one read.
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
