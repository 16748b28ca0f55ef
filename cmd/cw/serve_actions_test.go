package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestToolsActions summarises a hand-made action log: exec quantiles per model and batch,
// prediction error split into over- and under-prediction, LOAD times, statuses, the -skip
// warm-up and architecture names from models.tsv.
func TestToolsActions(t *testing.T) {
	var log strings.Builder
	log.WriteString(actionLogHeaderForTest)
	row := func(tNs, typ, status, model, batch, expected, actual int64) {
		// t action_id action_type status worker_id gpu_id model_id batch_size expected worker_exec ...
		fmt.Fprintf(&log, "%d\t1\t%d\t%d\t0\t0\t%d\t%d\t%d\t%d", tNs, typ, status, model, batch, expected, actual)
		for range 13 {
			log.WriteString("\t0")
		}
		log.WriteString("\n")
	}
	row(0, 2, 0, 1, 1, 1000, 99_000) // in the skipped warm-up
	for i := range 100 {
		row(int64(1e9+i), 2, 0, 1, 1, 1000_000, 1000_000+int64(i-50)*1000) // 50 over-, 49 under-predicted
	}
	row(2e9, 2, 1, 1, 1, 1000, 1000)   // window-passed: counted, not timed
	row(2e9, 1, 0, 2, 1, 0, 2_000_000) // LOAD of model 2
	row(2e9, 1, 3, 2, 1, 0, 0)         // LOAD refused: no-memory
	dir := t.TempDir()
	lp, mp := filepath.Join(dir, "actions.tsv"), filepath.Join(dir, "models.tsv")
	if err := os.WriteFile(lp, []byte(log.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	models := "model_id\tinstance\tpath\tstatus\n1\tresnet50.0000\tresnet50/model.onnx\tok\n2\tgemm.0000\tgemm.onnx\tok\n0\tbad.0000\tbad.onnx\tcannot register\n"
	if err := os.WriteFile(mp, []byte(models), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	js := filepath.Join(dir, "s.json")
	if err := runToolsActions(t.Context(), []string{"-log", lp, "-models", mp, "-skip", "500ms", "-json", js}, &out, &errb); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"| resnet50 | 0 | 1 | 100 | 999.0 | 1048.0 | 1049.0 | 1049.0 | 1.0501 | 50, 50.0 | 49, 49.0 |",
		"| gemm | 0 | 1 | 2.000 | 2.000 | 2.000 |",
		"INFER/ok 100", "INFER/window-passed 1", "LOAD/no-memory 1", "LOAD/ok 1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if _, err := os.Stat(js); err != nil {
		t.Error(err)
	}
	if err := runToolsActions(t.Context(), []string{"-log", mp}, &out, &errb); err == nil || !strings.Contains(err.Error(), "no column") {
		t.Errorf("models.tsv as a log: %v", err)
	}
}

const actionLogHeaderForTest = "t\taction_id\taction_type\tstatus\tworker_id\tgpu_id\tmodel_id\tbatch_size\texpected_exec_duration\tworker_exec_duration\texpected_exec_complete\tworker_exec_complete\texpected_gpu_clock\tworker_gpu_clock_before\tworker_gpu_clock\tworker_copy_output_complete\tworker_action_received\tworker_result_sent\tcontroller_result_enqueue\tcontroller_action_duration\tgoodput\trequests_queued\tcopies_loaded\n"
