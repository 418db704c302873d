package middleware

import kitendpoint "github.com/go-kit/kit/endpoint"

// businessError returns the error a response carries by go-kit's
// [kitendpoint.Failer] convention (a business outcome reported in the
// response, with a nil transport error, as go-kit's addsvc does), or nil
// when resp does not implement Failer or its Failed method returns nil. It
// calls the user's Failed, which may panic.
func businessError(resp any) error {
	if f, ok := resp.(kitendpoint.Failer); ok {
		return f.Failed()
	}
	return nil
}
