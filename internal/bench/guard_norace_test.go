//go:build !race

package main

// Without the race detector the heap guard applies as stated.
const raceHeapSlack = 1.0

func raceNote() string { return "" }
