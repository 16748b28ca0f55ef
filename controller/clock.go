package controller

import "time"

// processStart anchors the wire clock (wire.ClockUnixMono): Unix nanoseconds at start plus the
// monotonic time since, so it never jumps with the system clock.
var processStart = time.Now()

// WireNow is this process's wire clock in ns. The controller's scheduler runs in this domain;
// windows are converted to each worker's domain with the link's clock-offset estimate.
func WireNow() int64 { return processStart.UnixNano() + int64(time.Since(processStart)) }
