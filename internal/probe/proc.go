package probe

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Task is one thread of a process as /proc shows it.
type Task struct {
	TID  int
	Comm string
}

// Tasks lists the threads of process pid from /proc/pid/task, by tid.
func Tasks(pid int) ([]Task, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list threads of pid %d: %w; is it running?", pid, err)
	}
	var out []Task
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(dir, e.Name(), "comm"))
		if err != nil {
			continue // exited meanwhile
		}
		out = append(out, Task{TID: tid, Comm: strings.TrimSpace(string(comm))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TID < out[j].TID })
	return out, nil
}
