module jobrelay.io/bench/alt-client

go 1.26
