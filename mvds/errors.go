package mvds

import "errors"

// ErrMalformed is wrapped by every decoding error: the input is not a valid
// MVDS wire encoding (truncated, wrong wire type, repeated scalar field,
// unknown field, mixed field numberings or over a size limit).
var ErrMalformed = errors.New("malformed mvds wire payload")
