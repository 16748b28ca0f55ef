package model

import "errors"

// Errors wrapped by every failure of Parse, Load, Optimize, Specialize and Build, so callers
// can tell a model the server cannot run (ErrUnsupported) from a broken file (ErrInvalid).
var (
	// ErrInvalid: the file or graph is malformed (corrupt protobuf, dangling value, shapes that
	// do not agree, missing external data).
	ErrInvalid = errors.New("invalid model")
	// ErrUnsupported: a well-formed model uses something this server does not implement (an
	// operator, opset, data type or attribute value).
	ErrUnsupported = errors.New("unsupported model")
)
