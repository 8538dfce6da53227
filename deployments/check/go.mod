module github.com/revoked-dev/revoked/deployments/check

go 1.26.8

replace github.com/revoked-dev/revoked => ../..

require (
	github.com/compose-spec/compose-go/v2 v2.16.2 // indirect
	github.com/prometheus/prometheus v0.316.0 // indirect
	github.com/revoked-dev/revoked v0.0.0-00010101000000-000000000000 // indirect
	helm.sh/helm/v3 v3.21.4 // indirect
)
