// Package openapiv2 embeds the OpenAPI (Swagger 2.0) description of the
// control plane's REST mapping, controlplane.swagger.json, which buf
// generates next to this file from the protos and
// proto/luthien/controlplane/v1/controlplane_http.yaml (make generate).
// The gateway serves it at /api/openapi.json.
package openapiv2

import _ "embed"

// ControlPlane is the document, JSON text.
//
//go:embed controlplane.swagger.json
var ControlPlane string
