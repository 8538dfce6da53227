package schemas

import (
	"crypto/ecdh"
	"fmt"
)

func publicFromPrivate(priv [32]byte) ([32]byte, error) {
	var pub [32]byte
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return pub, fmt.Errorf("parsing sealing key: %w", err)
	}
	copy(pub[:], k.PublicKey().Bytes())
	return pub, nil
}
