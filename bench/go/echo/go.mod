module netloom-bench/go-echo

go 1.19
