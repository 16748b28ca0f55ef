#!/bin/sh
# protoc plugin wrapper: runs the protoc-gen-go pinned in go.mod (go tool).
exec go tool protoc-gen-go "$@"
