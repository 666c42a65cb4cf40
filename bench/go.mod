module luthien.dev/bench

go 1.26.7

require luthien.dev/gateway v0.0.0

// The gateway's own sibling modules are replaced too: replace directives
// apply only in the main module, and GOWORK=off builds bench on its own.
replace (
	luthien.dev/canon => ../canon
	luthien.dev/controlplane => ../controlplane
	luthien.dev/gateway => ../gateway
	luthien.dev/gen => ../gen
	luthien.dev/migrations => ../migrations
)
