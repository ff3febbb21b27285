//go:build race

package main

// Under the race detector sync.Pool drops a quarter of the values put back,
// so pooled buffers are allocated again about one call in four: the heap
// guard allows 40% more (measured: +20% for the buffered call, +33% for
// SSE, whose chunks use more pooled buffers).
const raceHeapSlack = 1.4

func raceNote() string { return ", race detector on: +40%" }
