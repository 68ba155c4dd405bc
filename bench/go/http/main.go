// go-http: HTTP/1.1 plaintext peer on Go's net package (not net/http, whose
// per-request allocations would make it a strawman): GET /plaintext and
// /json, TechEmpower-style headers, every complete request of one read
// answered with one write, Content-Length bodies skipped, Connection: close
// honoured, malformed requests get 400 and a close.
//
//	GOMAXPROCS=1 go-http -addr 127.0.0.1:8080
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

const maxHead = 8 * 1024

var date atomic.Value // []byte, refreshed every second

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	refreshDate()
	go func() {
		for range time.Tick(time.Second) {
			refreshDate()
		}
	}()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go-http: listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}

func refreshDate() {
	date.Store([]byte(time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")))
}

func respond(out []byte, status, contentType string, body []byte) []byte {
	out = append(out, "HTTP/1.1 "...)
	out = append(out, status...)
	out = append(out, "\r\nServer: go\r\nContent-Type: "...)
	out = append(out, contentType...)
	out = append(out, "\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\nDate: "...)
	out = append(out, date.Load().([]byte)...)
	out = append(out, "\r\n\r\n"...)
	return append(out, body...)
}

var (
	crlf     = []byte("\r\n")
	headEnd  = []byte("\r\n\r\n")
	hello    = []byte("Hello, World!")
	jsonBody = []byte(`{"message":"Hello, World!"}`)
)

// answer replies to every complete request at the start of in; it returns
// the bytes consumed, the output, and whether to close.
func answer(in, out []byte) (int, []byte, bool) {
	at := 0
	for {
		end := bytes.Index(in[at:], headEnd)
		if end < 0 {
			if len(in)-at > maxHead {
				return at, respond(out, "431 Request Header Fields Too Large", "text/plain", nil), true
			}
			return at, out, false
		}
		head := in[at : at+end]
		line := head
		if i := bytes.Index(head, crlf); i >= 0 {
			line = head[:i]
		}
		parts := bytes.Split(line, []byte(" "))
		if len(parts) != 3 || !bytes.HasPrefix(parts[2], []byte("HTTP/1.")) {
			return at, respond(out, "400 Bad Request", "text/plain", nil), true
		}
		bodyLen, closeAfter := 0, bytes.Equal(parts[2], []byte("HTTP/1.0"))
		for _, h := range bytes.Split(head, crlf)[1:] {
			colon := bytes.IndexByte(h, ':')
			if colon < 0 {
				return at, respond(out, "400 Bad Request", "text/plain", nil), true
			}
			name, value := h[:colon], bytes.TrimSpace(h[colon+1:])
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, err := strconv.Atoi(string(value))
				if err != nil || n < 0 {
					return at, respond(out, "400 Bad Request", "text/plain", nil), true
				}
				bodyLen = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				return at, respond(out, "501 Not Implemented", "text/plain", nil), true
			case bytes.EqualFold(name, []byte("Connection")):
				closeAfter = bytes.EqualFold(value, []byte("close"))
			}
		}
		total := end + 4 + bodyLen
		if len(in)-at < total {
			return at, out, false
		}
		switch string(parts[1]) {
		case "/plaintext":
			out = respond(out, "200 OK", "text/plain", hello)
		case "/json":
			out = respond(out, "200 OK", "application/json", jsonBody)
		default:
			out = respond(out, "404 Not Found", "text/plain", nil)
		}
		at += total
		if closeAfter {
			return at, out, true
		}
	}
}

func serve(c net.Conn) {
	defer c.Close()
	in := make([]byte, 0, 4096)
	out := make([]byte, 0, 4096)
	for {
		if cap(in)-len(in) < 1024 {
			grown := make([]byte, len(in), 2*cap(in))
			copy(grown, in)
			in = grown
		}
		n, err := c.Read(in[len(in):cap(in)])
		if n == 0 || err != nil {
			return
		}
		in = in[:len(in)+n]
		used, reply, closeAfter := answer(in, out[:0])
		in = in[:copy(in, in[used:])]
		if len(reply) > 0 {
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
		out = reply
		if closeAfter {
			return
		}
	}
}
