package kafka

import (
	"encoding/json"
	"fmt"

	"github.com/revoked-dev/revoked/schemas"
)

// SignedCommand encodes cmd as every issuer publishes it (the detector, a
// manual revoke, a campaign, the Shared Signals receiver, the global token
// revocation endpoint): the JSON value, the Ed25519 signature over exactly
// those bytes, the key id and the schema in headers, keyed by the target
// key (schemas.Target.Key), for topic (empty: the writer's own).
func SignedCommand(signer *schemas.Signer, topic string, cmd *schemas.RevokeCommand) (Message, error) {
	value, err := json.Marshal(cmd)
	if err != nil {
		return Message{}, fmt.Errorf("encoding command: %w", err)
	}
	return Message{
		Topic: topic,
		Key:   cmd.Key(),
		Value: value,
		Headers: []Header{
			{Key: schemas.HeaderSchema, Value: []byte(schemas.SchemaRevokeCommandV1)},
			{Key: schemas.HeaderKeyID, Value: []byte(signer.KeyID())},
			{Key: schemas.HeaderSignature, Value: []byte(signer.Sign(value))},
		},
	}, nil
}
