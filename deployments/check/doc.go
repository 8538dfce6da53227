// Package check tests the deployment files against the commands they
// run: the compose file (deployments/compose), the Helm chart
// (deployments/helm/revoked), and the dashboards and alert rules
// (deployments/monitoring). It is a module of its own, so the compose,
// Helm and Prometheus libraries these tests need stay out of the
// pipeline's go.mod.
//
// The tests build the commands as deployments/Dockerfile builds them
// (CGO off, -trimpath) and read what each accepts from its -h. The stack
// test (TestComposeStack) runs them as separate processes with the
// compose file's configuration, the embedded broker standing in for
// Kafka and the ClickHouse server of REVOKED_TEST_CLICKHOUSE_DSN for
// ClickHouse, and follows one event to its audit row.
//
//	cd deployments/check && go test ./...
package check
