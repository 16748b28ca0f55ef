package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// LoadTimes reads a controller action log (Clockwork's columns: t, action_id, action_type,
// status, ...; action_type 1 is LOAD, status 0 success) and returns the times of successful
// LOADs in ns after zeroNs (the log's t is Unix ns). Cold starts are these LOADs.
func LoadTimes(r io.Reader, name string, zeroNs int64) ([]int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	loads := []int64{}
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			if !bytes.HasPrefix(b, []byte("t\taction_id\taction_type\tstatus")) {
				return nil, fmt.Errorf("%s:1: not a controller action log (header %.40q)", name, b)
			}
			continue
		}
		f := bytes.SplitN(b, []byte{'\t'}, 5)
		if len(f) < 4 {
			return nil, fmt.Errorf("%s:%d: %d columns; want at least 4", name, line, len(f))
		}
		if string(f[2]) != "1" || string(f[3]) != "0" {
			continue
		}
		t, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: time %q: %w", name, line, f[0], err)
		}
		loads = append(loads, t-zeroNs)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	return loads, nil
}
