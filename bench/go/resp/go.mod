module netloom-bench/go-resp

go 1.19
