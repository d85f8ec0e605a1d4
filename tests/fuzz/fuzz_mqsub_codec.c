/*
 * libFuzzer target for the MQTT packet decoder of mqsub (common/mqsub_codec.c):
 * whatever a broker sends must be decoded or refused, never read past.
 *
 * The input is taken as a stream of packets, framed as mqsub.c frames them:
 * the fixed header first, then the whole packet copied into a buffer of
 * exactly its size (so AddressSanitizer catches a read one byte past it).
 * The whole input is also decoded as one packet, to reach the length checks.
 * What a successful decode returns is checked to lie inside the packet.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqsub_codec.h"

#define CHECK(cond)                     \
	do {                            \
		if (!(cond))            \
			__builtin_trap(); \
	} while (0)

static bool inside(const uint8_t *p, size_t n, const void *q, size_t len)
{
	const uint8_t *x = q;
	return x >= p && x <= p + n && len <= (size_t)(p + n - x);
}

static void decode_one(const uint8_t *data, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	if (p == NULL)
		return;
	memcpy(p, data, n);
	struct mqsub_packet pk;
	if (mqsub_decode(p, n, &pk) != 0) {
		CHECK(pk.error != NULL);
		free(p);
		return;
	}
	CHECK(pk.type == MQSUB_CONNACK || pk.type == MQSUB_PUBLISH || pk.type == MQSUB_SUBACK ||
	      pk.type == MQSUB_PINGRESP || pk.type == MQSUB_DISCONNECT);
	if (pk.reason_string != NULL)
		CHECK(inside(p, n, pk.reason_string, pk.reason_string_len));
	if (pk.type == MQSUB_PUBLISH) {
		CHECK(pk.qos >= 0 && pk.qos <= 2);
		CHECK(pk.topic_len > 0 && inside(p, n, pk.topic, pk.topic_len + 1));
		CHECK(strlen(pk.topic) == pk.topic_len);
		CHECK(mqsub_utf8_valid((const uint8_t *)pk.topic, pk.topic_len));
		CHECK(pk.qos == 0 || pk.packet_id != 0);
		CHECK(inside(p, n, pk.payload, pk.payload_len));
	}
	if (pk.type == MQSUB_SUBACK)
		CHECK(pk.payload_len > 0 && inside(p, n, pk.payload, pk.payload_len));
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	while (off < size) {
		size_t hl;
		uint32_t rem;
		int rc = mqsub_fixed_header(data + off, size - off, &hl, &rem);
		if (rc <= 0)
			break;
		CHECK(hl >= 2 && hl <= MQSUB_FIXED_HEADER_MAX && rem <= MQSUB_VARINT_MAX);
		if (rem > size - off - hl)
			break;
		decode_one(data + off, hl + rem);
		off += hl + rem;
	}
	decode_one(data, size);
	return 0;
}
