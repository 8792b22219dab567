package api

import (
	_ "embed" // the OpenAPI document
	"net/http"
)

// OpenAPI is the API's contract (docs/openapi.yaml is a copy, kept byte-identical by a
// test): every route, its scope and every status it answers.
//
//go:embed openapi.yaml
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}
