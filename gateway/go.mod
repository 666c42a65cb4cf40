module luthien.dev/gateway

go 1.26.7

require (
	luthien.dev/controlplane v0.0.0
	luthien.dev/gen v0.0.0
)

require (
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.33.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/net v0.61.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	luthien.dev/controlplane => ../controlplane
	luthien.dev/gen => ../gen
)

require luthien.dev/migrations v0.0.0

replace luthien.dev/migrations => ../migrations
