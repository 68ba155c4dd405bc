module netloom-bench/go-http

go 1.19
