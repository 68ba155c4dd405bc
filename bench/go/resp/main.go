// go-resp: RESP2 peer on Go's net package, as small as the tokio one: PING,
// ECHO, GET, SET, DEL, COMMAND, CONFIG (empty answers), QUIT; arrays and
// inline commands; every complete command of one read answered with one
// write; one map behind a mutex.
//
//	GOMAXPROCS=1 go-resp -addr 127.0.0.1:6379
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
)

const maxBulk = 64 << 20

var (
	mu    sync.Mutex
	store = map[string][]byte{}
)

var errPartial = errors.New("partial")

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go-resp: listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}

// lineInt reads the integer that ends at the next CRLF after at.
func lineInt(in []byte, at int) (int, int, error) {
	cr := bytes.IndexByte(in[at:], '\r')
	if cr < 0 || len(in) < at+cr+2 {
		if len(in)-at > 32 {
			return 0, 0, errors.New("Protocol error: bad length")
		}
		return 0, 0, errPartial
	}
	if in[at+cr+1] != '\n' {
		return 0, 0, errors.New("Protocol error: expected CRLF")
	}
	n, err := strconv.Atoi(string(in[at : at+cr]))
	if err != nil {
		return 0, 0, errors.New("Protocol error: bad length")
	}
	return n, at + cr + 2, nil
}

// parse reads one command at the start of in into args.
func parse(in []byte, args [][]byte) ([][]byte, int, error) {
	args = args[:0]
	if in[0] != '*' {
		nl := bytes.IndexByte(in, '\n')
		if nl < 0 {
			if len(in) > 64<<10 {
				return args, 0, errors.New("Protocol error: too big inline request")
			}
			return args, 0, errPartial
		}
		return append(args, bytes.Fields(in[:nl])...), nl + 1, nil
	}
	count, at, err := lineInt(in, 1)
	if err != nil {
		return args, 0, err
	}
	if count < 0 || count > 1<<20 {
		return args, 0, errors.New("Protocol error: invalid multibulk length")
	}
	for i := 0; i < count; i++ {
		if at >= len(in) {
			return args, 0, errPartial
		}
		if in[at] != '$' {
			return args, 0, errors.New("Protocol error: expected '$'")
		}
		n, start, err := lineInt(in, at+1)
		if err != nil {
			return args, 0, err
		}
		if n < 0 || n > maxBulk {
			return args, 0, errors.New("Protocol error: invalid bulk length")
		}
		if len(in) < start+n+2 {
			return args, 0, errPartial
		}
		if in[start+n] != '\r' || in[start+n+1] != '\n' {
			return args, 0, errors.New("Protocol error: expected CRLF")
		}
		args = append(args, in[start:start+n])
		at = start + n + 2
	}
	return args, at, nil
}

func bulk(out, v []byte) []byte {
	out = append(out, '$')
	out = strconv.AppendInt(out, int64(len(v)), 10)
	out = append(out, "\r\n"...)
	out = append(out, v...)
	return append(out, "\r\n"...)
}

// execute runs one command; false means close after the reply.
func execute(args [][]byte, out []byte) ([]byte, bool) {
	if len(args) == 0 {
		return out, true
	}
	name := strings.ToUpper(string(args[0]))
	switch {
	case name == "PING" && len(args) == 1:
		out = append(out, "+PONG\r\n"...)
	case (name == "PING" || name == "ECHO") && len(args) == 2:
		out = bulk(out, args[1])
	case name == "GET" && len(args) == 2:
		mu.Lock()
		v, ok := store[string(args[1])]
		if ok {
			out = bulk(out, v)
		} else {
			out = append(out, "$-1\r\n"...)
		}
		mu.Unlock()
	case name == "SET" && len(args) == 3:
		mu.Lock()
		store[string(args[1])] = append(store[string(args[1])][:0], args[2]...)
		mu.Unlock()
		out = append(out, "+OK\r\n"...)
	case name == "DEL" && len(args) >= 2:
		n := 0
		mu.Lock()
		for _, k := range args[1:] {
			if _, ok := store[string(k)]; ok {
				delete(store, string(k))
				n++
			}
		}
		mu.Unlock()
		out = append(out, ':')
		out = strconv.AppendInt(out, int64(n), 10)
		out = append(out, "\r\n"...)
	case name == "COMMAND" || name == "CONFIG":
		out = append(out, "*0\r\n"...)
	case name == "QUIT" && len(args) == 1:
		return append(out, "+OK\r\n"...), false
	case name == "PING" || name == "ECHO" || name == "GET" || name == "SET" || name == "DEL" || name == "QUIT":
		out = append(out, "-ERR wrong number of arguments\r\n"...)
	default:
		out = append(out, "-ERR unknown command\r\n"...)
	}
	return out, true
}

func serve(c net.Conn) {
	defer c.Close()
	in := make([]byte, 0, 4096)
	out := make([]byte, 0, 4096)
	args := make([][]byte, 0, 8)
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
		out = out[:0]
		at, open := 0, true
		for open && at < len(in) {
			var used int
			var perr error
			args, used, perr = parse(in[at:], args)
			if perr == errPartial {
				break
			}
			if perr != nil {
				out = append(out, "-ERR "+perr.Error()+"\r\n"...)
				open = false
				break
			}
			out, open = execute(args, out)
			at += used
		}
		in = in[:copy(in, in[at:])]
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		if !open {
			return
		}
	}
}
