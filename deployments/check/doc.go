// Package check holds the tests of the deployment files.
package check
