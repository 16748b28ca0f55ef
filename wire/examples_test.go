package wire

import (
	"bytes"
	"math"
	"strings"
)

// example is a named message used by the round-trip, golden, alloc and fuzz tests.
type example struct {
	name string
	msg  Message
}

// examples returns typical messages of every type (these have golden bytes), then boundary
// ones (zero values, maxima) that only round-trip.
func examples() (typical, boundary []example) {
	nonce := [NonceSize]byte{}
	for i := range nonce {
		nonce[i] = byte(i)
	}
	var mac [MACSize]byte
	for i := range mac {
		mac[i] = byte(0xA0 + i)
	}
	win := Window{ActionID: 77, ModelID: 3, GPU: 1, EarliestNs: 1_700_000_000_000_000_000, LatestNs: 1_700_000_000_002_000_000, ExpectedNs: 1_850_000}
	desc := ModelDesc{ModelID: 3, Name: []byte("resnet50"), InputBytes: 602112, OutputBytes: 4000, WeightsBytes: 7 << 24, WeightsPages: 7, Batches: []uint16{1, 2, 4, 8, 16}}
	typical = []example{
		{"hello-worker", &Hello{Role: RoleWorker, Flags: HelloAuth | HelloSynthInput, Clock: ClockUnixMono, Nonce: nonce, Agent: []byte("cw 0.1.0"), Backend: []byte("sim"),
			GPUs: []GPUInfo{{MemBytes: 80 << 30, PageBytes: 16 << 20, Pages: 4096, Name: []byte("sim-h100")}, {MemBytes: 80 << 30, PageBytes: 16 << 20, Pages: 4096, Name: []byte("sim-h100")}}}},
		{"hello-controller", &Hello{Role: RoleController, Clock: ClockUnixMono, Nonce: nonce, Agent: []byte("cw 0.1.0")}},
		{"auth", &Auth{MAC: mac}},
		{"goodbye", &Goodbye{Status: StatusVersionMismatch, Reason: []byte("peer speaks version 2")}},
		{"ping", &Ping{Seq: 9}},
		{"pong", &Pong{Seq: 9, PingSentNs: 1_700_000_000_000_000_123}},
		{"load-model-path", &LoadModel{RequestID: 5, ModelID: 3, Source: SourcePath, Name: []byte("resnet50"), Path: []byte("zoo/resnet50.onnx")}},
		{"load-model-upload", &LoadModel{RequestID: 6, Source: SourceUpload, Name: []byte("tiny")}},
		{"model-info", &ModelInfo{RequestID: 5, Status: StatusOK, Model: desc}},
		{"model-info-refused", &ModelInfo{RequestID: 6, Status: StatusModelExists, Reason: []byte("name tiny already registered as model 2")}},
		{"load-weights", &LoadWeights{win}},
		{"evict-weights", &EvictWeights{Window{ActionID: 78, ModelID: 3, GPU: 1, LatestNs: math.MaxInt64}}},
		{"infer", &Infer{Window: win, Batch: 8, Flags: 0}},
		{"infer-synth", &Infer{Window: win, Batch: 16, Flags: InferSynthInput | InferNoOutput}},
		{"clear-cache", &ClearCache{ActionID: 80, GPU: AllGPUs}},
		{"get-worker-state", &GetWorkerState{ActionID: 81}},
		{"worker-state", &WorkerState{ActionID: 81, GPUs: []GPUState{{GPU: 0, TotalPages: 4096, FreePages: 4089, Models: []uint32{3}}, {GPU: 1, TotalPages: 4096, FreePages: 4096}}, Registered: []uint32{1, 2, 3}}},
		{"result-infer", &Result{ActionID: 77, Action: TypeInfer, Status: StatusOK, GPU: 1, Batch: 8, ReceivedNs: 1_700_000_000_000_000_100,
			Phases: [NumPhases]Span{PhaseInput: {1_700_000_000_000_000_200, 1_700_000_000_000_100_000}, PhaseExec: {1_700_000_000_000_100_100, 1_700_000_000_001_900_000}, PhaseOutput: {1_700_000_000_001_900_100, 1_700_000_000_001_950_000}},
			ExecNs: 1_798_000}},
		{"result-rejected", &Result{ActionID: 79, Action: TypeLoadWeights, Status: StatusWindowPassed, GPU: 1, ReceivedNs: 5, Reason: []byte("now 1700000000002000100 > latest 1700000000002000000")}},
		{"list-models", &ListModels{RequestID: 1}},
		{"model-list", &ModelList{RequestID: 1, Models: []ModelDesc{desc, {ModelID: 4, Name: []byte("tiny"), InputBytes: 16, OutputBytes: 4, WeightsBytes: 1 << 24, WeightsPages: 1, Batches: []uint16{1}}}}},
		{"request", &Request{RequestID: 1001, Priority: PriorityInteractive, SLONs: 100_000_000, Name: []byte("resnet50")}},
		{"request-deadline", &Request{RequestID: 1002, ModelID: 3, Priority: PriorityBatch, DeadlineNs: 1_700_000_000_100_000_000}},
		{"cancel", &Cancel{RequestID: 1001}},
		{"response", &Response{RequestID: 1001, Status: StatusOK, ModelID: 3, Batch: 8, ArrivedNs: 10, DispatchedNs: 20, CompletedNs: 30, ExecNs: 5}},
		{"response-dropped", &Response{RequestID: 1002, Status: StatusCannotMeetSLO, ModelID: 3, ArrivedNs: 10, CompletedNs: 11, Reason: []byte("best estimate 2.1ms > 1ms left")}},
	}

	long := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	ids := make([]uint32, MaxModels)
	for i := range ids {
		ids[i] = math.MaxUint32 - uint32(i)
	}
	gpus := make([]GPUInfo, MaxGPUs)
	states := make([]GPUState, MaxGPUs)
	for i := range gpus {
		gpus[i] = GPUInfo{MemBytes: math.MaxUint64, PageBytes: math.MaxUint32, Pages: math.MaxUint32, Name: long(MaxNameLen)}
		states[i] = GPUState{GPU: uint16(i), TotalPages: math.MaxUint32, FreePages: 0, Models: ids[:MaxModels/MaxGPUs]}
	}
	batches := make([]uint16, MaxBatchSizes)
	for i := range batches {
		batches[i] = uint16(i + 1)
	}
	maxDesc := ModelDesc{ModelID: math.MaxUint32, Name: long(MaxNameLen), InputBytes: math.MaxUint64, OutputBytes: math.MaxUint64, WeightsBytes: math.MaxUint64, WeightsPages: math.MaxUint32, Batches: batches}
	descs := make([]ModelDesc, MaxModels)
	for i := range descs {
		descs[i] = maxDesc
	}
	minWin := Window{ActionID: 0, EarliestNs: math.MinInt64, LatestNs: math.MinInt64, ExpectedNs: math.MinInt64}
	maxWin := Window{ActionID: math.MaxUint64, ModelID: math.MaxUint32, GPU: math.MaxUint16, EarliestNs: math.MaxInt64, LatestNs: math.MaxInt64, ExpectedNs: math.MaxInt64}
	var allPhases [NumPhases]Span
	for i := range allPhases {
		allPhases[i] = Span{math.MinInt64, math.MaxInt64}
	}
	boundary = []example{
		{"hello-max", &Hello{Role: RoleTool, Flags: helloFlagsKnown, Clock: ClockUnixMono, Agent: long(MaxAgentLen), Backend: long(MaxNameLen), GPUs: gpus}},
		{"hello-min", &Hello{Role: RoleClient, Clock: ClockUnixMono}},
		{"goodbye-max", &Goodbye{Status: numStatus - 1, Reason: long(MaxReasonLen)}},
		{"auth-zero", &Auth{}},
		{"ping-max", &Ping{Seq: math.MaxUint64}},
		{"pong-min", &Pong{PingSentNs: math.MinInt64}},
		{"load-model-max", &LoadModel{RequestID: math.MaxUint64, ModelID: math.MaxUint32, Source: SourcePath, Name: long(MaxNameLen), Path: []byte(strings.Repeat("/a", MaxPathLen/2))}},
		{"model-info-max", &ModelInfo{RequestID: math.MaxUint64, Status: StatusUnknownRequest, Reason: long(MaxReasonLen), Model: maxDesc}},
		{"load-weights-min", &LoadWeights{minWin}},
		{"evict-weights-max", &EvictWeights{maxWin}},
		{"infer-max", &Infer{Window: maxWin, Batch: math.MaxUint16, Flags: inferFlagsKnown}},
		{"infer-min", &Infer{Window: minWin}},
		{"clear-cache-zero", &ClearCache{}},
		{"get-worker-state-max", &GetWorkerState{ActionID: math.MaxUint64}},
		{"worker-state-max", &WorkerState{ActionID: math.MaxUint64, GPUs: states, Registered: ids}},
		{"worker-state-empty", &WorkerState{}},
		{"result-max", &Result{ActionID: math.MaxUint64, Action: TypeResponse, Status: numStatus - 1, GPU: math.MaxUint16, Batch: math.MaxUint16, ReceivedNs: math.MaxInt64, Phases: allPhases, ExecNs: math.MinInt64, Reason: long(MaxReasonLen)}},
		{"list-models-max", &ListModels{RequestID: math.MaxUint64}},
		{"model-list-max", &ModelList{RequestID: math.MaxUint64, Models: descs}},
		{"model-list-empty", &ModelList{}},
		{"request-max", &Request{RequestID: math.MaxUint64, ModelID: math.MaxUint32, Priority: maxPriority, SLONs: math.MaxInt64, DeadlineNs: math.MinInt64, Name: long(MaxNameLen)}},
		{"cancel-max", &Cancel{RequestID: math.MaxUint64}},
		{"response-max", &Response{RequestID: math.MaxUint64, Status: numStatus - 1, ModelID: math.MaxUint32, Batch: math.MaxUint16, ArrivedNs: math.MinInt64, DispatchedNs: math.MaxInt64, CompletedNs: -1, ExecNs: math.MaxInt64, Reason: long(MaxReasonLen)}},
	}
	return typical, boundary
}
