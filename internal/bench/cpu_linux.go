package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSnap is a reading of the machine's busy CPU time and this process's
// own, to tell how much of the CPU something else used during a run.
type cpuSnap struct {
	ok   bool
	busy float64 // seconds, all CPUs, steal included
	self float64 // seconds of this process, user + system
	at   time.Time
}

// userHZ is the unit of /proc/stat; 100 on every Linux build that matters.
const userHZ = 100

func takeCPU() cpuSnap {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSnap{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuSnap{}
	}
	var busy float64
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return cpuSnap{}
		}
		busy += v / userHZ
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuSnap{}
	}
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return cpuSnap{ok: true, busy: busy, self: self, at: time.Now()}
}

// otherCPU is the CPU, in cores, used between a and b by everything but
// this process (other programs, the hypervisor's steal); -1 if unknown.
func otherCPU(a, b cpuSnap) float64 {
	wall := b.at.Sub(a.at).Seconds()
	if !a.ok || !b.ok || wall <= 0 {
		return -1
	}
	return max((b.busy-a.busy)-(b.self-a.self), 0) / wall
}

// selfCPU is the CPU, in cores, this process used between a and b.
func selfCPU(a, b cpuSnap) float64 {
	wall := b.at.Sub(a.at).Seconds()
	if !a.ok || !b.ok || wall <= 0 {
		return -1
	}
	return (b.self - a.self) / wall
}
