package middleware

import (
	"fmt"
	"strings"
)

// validateClasses checks that every name in names is a class in classes
// (nil: the built-ins), reporting unknown ones under path[i].
func validateClasses(p *problems, path, field string, names []string, classes *ErrorClasses) {
	for i, name := range names {
		if _, ok := classes.Lookup(name); !ok {
			p.add(fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("%s[%d]", field, i), name,
				"unknown error class (known: "+strings.Join(classes.Names(), ", ")+")")
		}
	}
}

// orClasses returns a predicate matching the classes named in names (already
// validated) or pred; pred alone when names is empty.
func orClasses(names []string, classes *ErrorClasses, pred func(error) bool) func(error) bool {
	if len(names) == 0 {
		return pred
	}
	match := classes.MustMatch(names...)
	if pred == nil {
		return match
	}
	return func(err error) bool { return match(err) || pred(err) }
}
