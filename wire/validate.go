package wire

import "fmt"

// Validate checks m's variable fields against their maxima, so a caller can refuse bad values
// (a user's path, a model list too long) with an error instead of reaching the encoders, which
// panic on them. Conn.Send calls it.
//
// Timing: every Send; must not allocate unless it fails; a type switch and a few compares.
func Validate(m Message) error {
	switch m := m.(type) {
	case *Hello:
		if err := checkLen("Hello.Agent", len(m.Agent), MaxAgentLen); err != nil {
			return err
		}
		if err := checkLen("Hello.Backend", len(m.Backend), MaxNameLen); err != nil {
			return err
		}
		if err := checkLen("Hello.GPUs", len(m.GPUs), MaxGPUs); err != nil {
			return err
		}
		for i := range m.GPUs {
			if err := checkLen("Hello.GPUs.Name", len(m.GPUs[i].Name), MaxNameLen); err != nil {
				return err
			}
		}
	case *Goodbye:
		return checkLen("Goodbye.Reason", len(m.Reason), MaxReasonLen)
	case *LoadModel:
		if err := checkLen("LoadModel.Name", len(m.Name), MaxNameLen); err != nil {
			return err
		}
		return checkLen("LoadModel.Path", len(m.Path), MaxPathLen)
	case *ModelInfo:
		if err := checkLen("ModelInfo.Reason", len(m.Reason), MaxReasonLen); err != nil {
			return err
		}
		return validateDesc(&m.Model)
	case *ModelList:
		if err := checkLen("ModelList.Models", len(m.Models), MaxModels); err != nil {
			return err
		}
		for i := range m.Models {
			if err := validateDesc(&m.Models[i]); err != nil {
				return err
			}
		}
	case *WorkerState:
		if err := checkLen("WorkerState.GPUs", len(m.GPUs), MaxGPUs); err != nil {
			return err
		}
		for i := range m.GPUs {
			if err := checkLen("WorkerState.GPUs.Models", len(m.GPUs[i].Models), MaxModels); err != nil {
				return err
			}
		}
		return checkLen("WorkerState.Registered", len(m.Registered), MaxModels)
	case *Result:
		return checkLen("Result.Reason", len(m.Reason), MaxReasonLen)
	case *Request:
		return checkLen("Request.Name", len(m.Name), MaxNameLen)
	case *Response:
		return checkLen("Response.Reason", len(m.Reason), MaxReasonLen)
	}
	return nil
}

func validateDesc(d *ModelDesc) error {
	if err := checkLen("ModelDesc.Name", len(d.Name), MaxNameLen); err != nil {
		return err
	}
	return checkLen("ModelDesc.Batches", len(d.Batches), MaxBatchSizes)
}

func checkLen(field string, n, max int) error {
	if n > max {
		return fmt.Errorf("cannot encode: %w", tooLong(field, uint64(n), uint64(max)))
	}
	return nil
}
