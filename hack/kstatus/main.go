// Command kstatus reads one Kubernetes object as JSON on stdin and prints what the kstatus library
// (sigs.k8s.io/cli-utils/pkg/kstatus/status, the code Flux's `wait` and `kubectl`-style waiters use) says about
// it, as one JSON line: {"status": "Current|InProgress|Failed|Terminating|NotFound|Unknown", "message": ...}.
//
// With -current/-in-progress/-failed it also evaluates Flux-style `healthCheckExprs` CEL expressions on the
// object (the object is `self`, top-level fields are bound too) and adds "cel": <status>. The order follows Flux:
// a stale observedGeneration is InProgress, then inProgress, failed, current; nothing true is InProgress.
// Used by the e2e tests only (tests/support/kstatus.py).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/google/cel-go/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	CEL     string `json:"cel,omitempty"`
}

func main() {
	current := flag.String("current", "", "CEL expression for Current")
	inProgress := flag.String("in-progress", "", "CEL expression for InProgress")
	failed := flag.String("failed", "", "CEL expression for Failed")
	flag.Parse()

	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	u := &unstructured.Unstructured{}
	// The unstructured decoder keeps integers as int64, as objects read from the API server have them.
	if err := u.UnmarshalJSON(raw); err != nil {
		fail("stdin is not a Kubernetes object: %v", err)
	}
	obj := u.Object
	res, err := status.Compute(u)
	if err != nil {
		fail("kstatus: %v", err)
	}
	out := result{Status: res.Status.String(), Message: res.Message}
	if *current != "" || *inProgress != "" || *failed != "" {
		out.CEL = evalCEL(obj, *inProgress, *failed, *current)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fail("writing result: %v", err)
	}
}

func evalCEL(obj map[string]any, inProgress, failed, current string) string {
	meta, _ := obj["metadata"].(map[string]any)
	st, _ := obj["status"].(map[string]any)
	if st != nil && meta != nil {
		if og, ok := st["observedGeneration"]; ok && og != meta["generation"] {
			return "InProgress"
		}
	}
	for _, c := range []struct{ expr, name string }{
		{inProgress, "InProgress"}, {failed, "Failed"}, {current, "Current"},
	} {
		if c.expr != "" && evalBool(obj, c.expr) {
			return c.name
		}
	}
	return "InProgress"
}

func evalBool(obj map[string]any, expr string) bool {
	names := []string{"self", "apiVersion", "kind", "metadata", "spec", "status"}
	opts := []cel.EnvOption{cel.OptionalTypes()}
	vars := map[string]any{"self": obj}
	for _, n := range names {
		opts = append(opts, cel.Variable(n, cel.DynType))
		if n != "self" {
			if v, ok := obj[n]; ok {
				vars[n] = v
			} else {
				vars[n] = map[string]any{}
			}
		}
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		fail("cel env: %v", err)
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		fail("cel compile %q: %v", expr, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		fail("cel program: %v", err)
	}
	val, _, err := prg.Eval(vars)
	if err != nil {
		// Flux treats an evaluation error (e.g. a missing field) as "not this status yet".
		return false
	}
	b, ok := val.Value().(bool)
	return ok && b
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(2)
}
