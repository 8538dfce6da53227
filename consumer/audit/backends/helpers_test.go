package backends_test

import (
	"github.com/revoked-dev/revoked/consumer/audit/audittest"
	"github.com/revoked-dev/revoked/schemas"
)

func row() schemas.AuditRow { return audittest.Row(1) }
