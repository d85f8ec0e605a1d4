/*
 * mqsub_codec: packets we send compared byte for byte with hand-written
 * MQTT 5 encodings, and packets a broker may send decoded, including the
 * truncated and malformed ones a broker must never get us to read past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqsub_codec.h"
#include "strbuf.h"

#define B(...) ((const uint8_t[]){ __VA_ARGS__ })
#define LEN(...) sizeof((const uint8_t[]){ __VA_ARGS__ })

static void assert_bytes(const struct strbuf *b, const uint8_t *want, size_t n)
{
	assert_true(strbuf_ok(b));
	assert_int_equal(b->len, n);
	assert_memory_equal(b->data, want, n);
}

/* Decodes a copy of the n bytes (decoding writes the topic's NUL in place). */
static int decode(const uint8_t *p, size_t n, struct mqsub_packet *pk, uint8_t **copy)
{
	*copy = malloc(n ? n : 1);
	assert_non_null(*copy);
	memcpy(*copy, p, n);
	return mqsub_decode(*copy, n, pk);
}

/* Expects the packet to be refused; returns the reason. */
static const char *refused(const uint8_t *p, size_t n)
{
	struct mqsub_packet pk;
	uint8_t *copy;
	assert_int_equal(decode(p, n, &pk, &copy), -1);
	free(copy);
	assert_non_null(pk.error);
	return pk.error;
}

#define REFUSED(...) refused(B(__VA_ARGS__), LEN(__VA_ARGS__))

/* --- encoding ---------------------------------------------------------- */

static void test_connect(void **state)
{
	struct strbuf b;
	struct mqsub_connect_fields c = {
		.client_id = "c1", .keepalive_s = 30, .session_expiry_s = 604800,
		.receive_max = 65535, .max_packet = 4 * 1024 * 1024 + 1024,
	};
	(void)state;
	strbuf_init(&b);
	assert_int_equal(mqsub_encode_connect(&b, &c), 0);
	assert_bytes(&b, B(0x10, 0x1C,
			   0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
			   0x00,                         /* clean start off, no will, no user */
			   0x00, 0x1E,                   /* keepalive 30 */
			   0x0D,                         /* properties: 13 bytes */
			   0x11, 0x00, 0x09, 0x3A, 0x80, /* session expiry 604800 */
			   0x21, 0xFF, 0xFF,             /* receive maximum 65535 */
			   0x27, 0x00, 0x40, 0x04, 0x00, /* maximum packet size 4 MiB + 1 KiB */
			   0x00, 0x02, 'c', '1'),
		     30);

	/* With user and password. */
	strbuf_reset(&b);
	c.user = "u";
	c.pass = "p";
	assert_int_equal(mqsub_encode_connect(&b, &c), 0);
	assert_bytes(&b, B(0x10, 0x22,
			   0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
			   0xC0,
			   0x00, 0x1E,
			   0x0D,
			   0x11, 0x00, 0x09, 0x3A, 0x80,
			   0x21, 0xFF, 0xFF,
			   0x27, 0x00, 0x40, 0x04, 0x00,
			   0x00, 0x02, 'c', '1',
			   0x00, 0x01, 'u',
			   0x00, 0x01, 'p'),
		     36);

	/* A remaining length of two bytes: 226 = 0xE2 0x01. */
	char id[201];
	memset(id, 'x', 200);
	id[200] = '\0';
	c.client_id = id;
	c.user = c.pass = NULL;
	strbuf_reset(&b);
	assert_int_equal(mqsub_encode_connect(&b, &c), 0);
	assert_int_equal(b.len, 3 + 226);
	assert_memory_equal(b.data, B(0x10, 0xE2, 0x01, 0x00, 0x04), 5);
	assert_memory_equal(b.data + b.len - 202, B(0x00, 0xC8, 'x'), 3);

	/* Fields that cannot be encoded. */
	c.client_id = "bad\xC0\x80";
	strbuf_reset(&b);
	assert_int_equal(mqsub_encode_connect(&b, &c), -1);
	c.client_id = "c1";
	c.receive_max = 0;
	assert_int_equal(mqsub_encode_connect(&b, &c), -1);
	strbuf_free(&b);
}

static void test_subscribe(void **state)
{
	struct strbuf b;
	const struct mqsub_filter f[] = { { "a/#", 1 }, { "$share/g/b", 0 } };
	(void)state;
	strbuf_init(&b);
	assert_int_equal(mqsub_encode_subscribe(&b, 1, f, 2), 0);
	assert_bytes(&b, B(0x82, 0x16,
			   0x00, 0x01, /* packet id */
			   0x00,       /* no properties */
			   0x00, 0x03, 'a', '/', '#', 0x11, /* qos 1, retain handling 1 */
			   0x00, 0x0A, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'b', 0x10),
		     24);

	const struct mqsub_filter bad_qos[] = { { "a", 2 } };
	const struct mqsub_filter empty[] = { { "", 0 } };
	const struct mqsub_filter bad_utf8[] = { { "a/\xFF", 1 } };
	strbuf_reset(&b);
	assert_int_equal(mqsub_encode_subscribe(&b, 1, bad_qos, 1), -1);
	assert_int_equal(mqsub_encode_subscribe(&b, 1, empty, 1), -1);
	assert_int_equal(mqsub_encode_subscribe(&b, 1, bad_utf8, 1), -1);
	assert_int_equal(mqsub_encode_subscribe(&b, 0, f, 1), -1);
	assert_int_equal(mqsub_encode_subscribe(&b, 1, f, 0), -1);
	strbuf_free(&b);
}

static void test_small_packets(void **state)
{
	struct strbuf b;
	(void)state;
	strbuf_init(&b);
	assert_int_equal(mqsub_encode_puback(&b, 0x1234), 0);
	assert_int_equal(mqsub_encode_puback(&b, 1), 0);
	assert_bytes(&b, B(0x40, 0x02, 0x12, 0x34, 0x40, 0x02, 0x00, 0x01), 8);
	assert_int_equal(mqsub_encode_puback(&b, 0), -1);

	strbuf_reset(&b);
	assert_int_equal(mqsub_encode_pingreq(&b), 0);
	assert_bytes(&b, B(0xC0, 0x00), 2);
	strbuf_reset(&b);
	assert_int_equal(mqsub_encode_disconnect(&b), 0);
	assert_bytes(&b, B(0xE0, 0x00), 2);
	strbuf_free(&b);
}

/* --- decoding ---------------------------------------------------------- */

static void test_publish_qos0(void **state)
{
	const uint8_t p[] = { 0x30, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 'h', 'i' };
	struct mqsub_packet pk;
	uint8_t *copy;
	(void)state;
	assert_int_equal(decode(p, sizeof(p), &pk, &copy), 0);
	assert_int_equal(pk.type, MQSUB_PUBLISH);
	assert_int_equal(pk.qos, 0);
	assert_false(pk.dup);
	assert_false(pk.retain);
	assert_string_equal(pk.topic, "a/b");
	assert_int_equal(pk.topic_len, 3);
	assert_int_equal(pk.payload_len, 2);
	assert_memory_equal(pk.payload, "hi", 2);
	free(copy);

	/* An empty payload. */
	assert_int_equal(decode(B(0x30, 0x04, 0x00, 0x01, 't', 0x00), 6, &pk, &copy), 0);
	assert_string_equal(pk.topic, "t");
	assert_int_equal(pk.payload_len, 0);
	free(copy);
}

static void test_publish_qos1_properties(void **state)
{
	const uint8_t p[] = {
		0x3B, 0x22,                   /* PUBLISH, dup, qos 1, retain */
		0x00, 0x01, 't',
		0x00, 0x07,                   /* packet id */
		0x1A,                         /* properties: 26 bytes */
		0x01, 0x01,                   /* payload format indicator */
		0x02, 0x00, 0x00, 0x00, 0x3C, /* message expiry interval */
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', /* user property */
		0x0B, 0x81, 0x01,             /* subscription identifier 129 */
		0x03, 0x00, 0x02, 'j', 's',   /* content type */
		0x09, 0x00, 0x01, 0xFF,       /* correlation data */
		'{', '}',
	};
	struct mqsub_packet pk;
	uint8_t *copy;
	(void)state;
	assert_int_equal(sizeof(p), 2 + 0x22);
	assert_int_equal(decode(p, sizeof(p), &pk, &copy), 0);
	assert_int_equal(pk.type, MQSUB_PUBLISH);
	assert_int_equal(pk.qos, 1);
	assert_true(pk.dup);
	assert_true(pk.retain);
	assert_int_equal(pk.packet_id, 7);
	assert_string_equal(pk.topic, "t");
	assert_int_equal(pk.payload_len, 2);
	assert_memory_equal(pk.payload, "{}", 2);
	free(copy);

	/* A response topic and a reason string are skipped as well. */
	assert_int_equal(decode(B(0x32, 0x10, 0x00, 0x01, 't', 0x00, 0x01, 0x09,
				  0x08, 0x00, 0x02, 'r', 't', 0x1F, 0x00, 0x01, 'x', 'P'),
				18, &pk, &copy), 0);
	assert_int_equal(pk.payload_len, 1);
	assert_int_equal(pk.payload[0], 'P');
	free(copy);
}

static void test_remaining_length(void **state)
{
	uint8_t p[3 + 204];
	size_t hl;
	uint32_t rem;
	struct mqsub_packet pk;
	uint8_t *copy;
	(void)state;
	/* remaining 204 = 0xCC 0x01: topic (3) + properties (1) + 200 bytes */
	p[0] = 0x30;
	p[1] = 0xCC;
	p[2] = 0x01;
	memcpy(p + 3, B(0x00, 0x01, 'x', 0x00), 4);
	memset(p + 7, 'z', 200);
	assert_int_equal(mqsub_fixed_header(p, 0, &hl, &rem), 0);
	assert_int_equal(mqsub_fixed_header(p, 1, &hl, &rem), 0);
	assert_int_equal(mqsub_fixed_header(p, 2, &hl, &rem), 0);
	assert_int_equal(mqsub_fixed_header(p, 3, &hl, &rem), 1);
	assert_int_equal(hl, 3);
	assert_int_equal(rem, 204);
	assert_int_equal(decode(p, sizeof(p), &pk, &copy), 0);
	assert_int_equal(pk.payload_len, 200);
	free(copy);

	/* The largest: 268435455 = FF FF FF 7F. */
	assert_int_equal(mqsub_fixed_header(B(0x30, 0xFF, 0xFF, 0xFF, 0x7F), 5, &hl, &rem), 1);
	assert_int_equal(hl, 5);
	assert_int_equal(rem, MQSUB_VARINT_MAX);
	/* A fifth byte is malformed, with or without the rest of it. */
	assert_int_equal(mqsub_fixed_header(B(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01), 6, &hl, &rem), -1);
	assert_int_equal(mqsub_fixed_header(B(0x30, 0x80, 0x80, 0x80, 0x80), 5, &hl, &rem), -1);
	REFUSED(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01);
}

/* Every prefix of a packet is "need more": no header yet, or shorter than it says. */
static void test_truncated(void **state)
{
	const uint8_t p[] = { 0x32, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x05, 0x00, 'h', 'i' };
	(void)state;
	for (size_t k = 0; k < sizeof(p); k++) {
		size_t hl;
		uint32_t rem;
		int rc = mqsub_fixed_header(p, k, &hl, &rem);
		assert_true(rc == 0 || (rc == 1 && hl + rem > k));
		/* Given as a whole packet, a prefix is refused, never read past. */
		if (k > 0)
			refused(p, k);
	}
	struct mqsub_packet pk;
	uint8_t *copy;
	assert_int_equal(decode(p, sizeof(p), &pk, &copy), 0);
	assert_int_equal(pk.packet_id, 5);
	free(copy);
	/* More bytes than the remaining length says. */
	refused(B(0xD0, 0x00, 0x00), 3);
}

static void test_malformed_publish(void **state)
{
	(void)state;
	/* topic length beyond the packet */
	assert_string_equal(REFUSED(0x30, 0x05, 0x00, 0x09, 'a', 'b', 0x00),
			    "topic past the end of the packet");
	/* property length beyond the packet */
	REFUSED(0x30, 0x06, 0x00, 0x01, 'a', 0x05, 0x01, 0x01);
	/* a property longer than the property list */
	REFUSED(0x30, 0x08, 0x00, 0x01, 'a', 0x03, 0x02, 0x00, 0x00, 'x');
	/* a string property whose length runs past the list */
	REFUSED(0x30, 0x08, 0x00, 0x01, 'a', 0x03, 0x03, 0x00, 0x09, 'x');
	/* property length with a fifth byte */
	REFUSED(0x30, 0x08, 0x00, 0x01, 'a', 0xFF, 0xFF, 0xFF, 0xFF, 0x01);
	/* no property length at all */
	REFUSED(0x30, 0x03, 0x00, 0x01, 'a');
	/* unknown property */
	assert_string_equal(REFUSED(0x30, 0x06, 0x00, 0x01, 'a', 0x01, 0x7F, 'x'),
			    "unknown property");
	/* topic alias: we allow none */
	REFUSED(0x30, 0x08, 0x00, 0x01, 'a', 0x03, 0x23, 0x00, 0x01, 'x');
	/* invalid UTF-8 in the topic: bad continuation, surrogate, U+0000, overlong */
	assert_string_equal(REFUSED(0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, 0x00),
			    "topic is not valid utf-8");
	REFUSED(0x30, 0x06, 0x00, 0x03, 0xED, 0xA0, 0x80, 0x00);
	REFUSED(0x30, 0x05, 0x00, 0x02, 'a', 0x00, 0x00);
	REFUSED(0x30, 0x05, 0x00, 0x02, 0xC0, 0x80, 0x00);
	/* empty topic, wildcards */
	REFUSED(0x30, 0x03, 0x00, 0x00, 0x00);
	REFUSED(0x30, 0x06, 0x00, 0x03, 'a', '/', '+', 0x00);
	REFUSED(0x30, 0x04, 0x00, 0x01, '#', 0x00);
	/* qos 3, dup at qos 0, packet id 0, packet id cut off */
	REFUSED(0x36, 0x06, 0x00, 0x01, 'a', 0x00, 0x01, 0x00);
	REFUSED(0x38, 0x04, 0x00, 0x01, 'a', 0x00);
	REFUSED(0x32, 0x06, 0x00, 0x01, 'a', 0x00, 0x00, 0x00);
	REFUSED(0x32, 0x04, 0x00, 0x01, 'a', 0x00);
}

static void test_qos2_decodes(void **state)
{
	/* The codec reads a QoS 2 PUBLISH; refusing it is mqsub.c's policy. */
	struct mqsub_packet pk;
	uint8_t *copy;
	(void)state;
	assert_int_equal(decode(B(0x34, 0x06, 0x00, 0x01, 'a', 0x00, 0x09, 0x00), 8, &pk, &copy), 0);
	assert_int_equal(pk.qos, 2);
	assert_int_equal(pk.packet_id, 9);
	free(copy);
}

static void test_connack(void **state)
{
	struct mqsub_packet pk;
	uint8_t *copy;
	(void)state;
	assert_int_equal(decode(B(0x20, 0x03, 0x01, 0x00, 0x00), 5, &pk, &copy), 0);
	assert_int_equal(pk.type, MQSUB_CONNACK);
	assert_true(pk.session_present);
	assert_int_equal(pk.reason, 0);
	assert_int_equal(pk.server_keepalive, -1);
	assert_null(pk.reason_string);
	free(copy);

	/* Every property a broker may send in CONNACK. */
	const uint8_t p[] = {
		0x20, 0x35, 0x00, 0x00,
		0x32,                           /* properties: 50 bytes */
		0x11, 0x00, 0x00, 0x0E, 0x10,   /* session expiry */
		0x21, 0x00, 0x0A,               /* receive maximum */
		0x24, 0x01,                     /* maximum qos */
		0x25, 0x01,                     /* retain available */
		0x27, 0x00, 0x00, 0x10, 0x00,   /* maximum packet size */
		0x12, 0x00, 0x01, 'x',          /* assigned client id */
		0x22, 0x00, 0x05,               /* topic alias maximum */
		0x1F, 0x00, 0x02, 'o', 'k',     /* reason string */
		0x26, 0x00, 0x01, 'k', 0x00, 0x00, /* user property, empty value */
		0x28, 0x01, 0x29, 0x01, 0x2A, 0x01, /* wildcard, sub ids, shared available */
		0x13, 0x00, 0x3C,               /* server keep alive 60 */
		0x1A, 0x00, 0x00,               /* response information */
		0x1C, 0x00, 0x00,               /* server reference */
	};
	assert_int_equal(sizeof(p), 2 + 0x35);
	assert_int_equal(decode(p, sizeof(p), &pk, &copy), 0);
	assert_false(pk.session_present);
	assert_int_equal(pk.server_keepalive, 60);
	assert_int_equal(pk.reason_string_len, 2);
	assert_memory_equal(pk.reason_string, "ok", 2);
	free(copy);

	/* Refused, also in the short form without properties. */
	assert_int_equal(decode(B(0x20, 0x02, 0x00, 0x87), 4, &pk, &copy), 0);
	assert_int_equal(pk.reason, 0x87);
	free(copy);

	REFUSED(0x20, 0x03, 0x02, 0x00, 0x00);  /* reserved acknowledge flag */
	REFUSED(0x21, 0x03, 0x00, 0x00, 0x00);  /* reserved header flag */
	REFUSED(0x20, 0x01, 0x00);              /* too short */
	REFUSED(0x20, 0x04, 0x00, 0x00, 0x00, 0x00); /* trailing byte */
}

static void test_suback(void **state)
{
	struct mqsub_packet pk;
	uint8_t *copy;
	(void)state;
	assert_int_equal(decode(B(0x90, 0x05, 0x00, 0x01, 0x00, 0x01, 0x80), 7, &pk, &copy), 0);
	assert_int_equal(pk.type, MQSUB_SUBACK);
	assert_int_equal(pk.packet_id, 1);
	assert_int_equal(pk.payload_len, 2);
	assert_int_equal(pk.payload[0], 0x01);
	assert_int_equal(pk.payload[1], 0x80);
	free(copy);

	assert_int_equal(decode(B(0x90, 0x09, 0x12, 0x34, 0x04, 0x1F, 0x00, 0x01, 'n', 0x87, 0x00),
				11, &pk, &copy), 0);
	assert_int_equal(pk.packet_id, 0x1234);
	assert_int_equal(pk.reason_string_len, 1);
	assert_int_equal(pk.payload_len, 2);
	free(copy);

	REFUSED(0x90, 0x03, 0x00, 0x01, 0x00);  /* no reason codes */
	REFUSED(0x92, 0x04, 0x00, 0x01, 0x00, 0x00);
}

static void test_pingresp_disconnect(void **state)
{
	struct mqsub_packet pk;
	uint8_t *copy;
	(void)state;
	assert_int_equal(decode(B(0xD0, 0x00), 2, &pk, &copy), 0);
	assert_int_equal(pk.type, MQSUB_PINGRESP);
	free(copy);
	REFUSED(0xD0, 0x01, 0x00);

	assert_int_equal(decode(B(0xE0, 0x00), 2, &pk, &copy), 0);
	assert_int_equal(pk.type, MQSUB_DISCONNECT);
	assert_int_equal(pk.reason, 0);
	free(copy);
	assert_int_equal(decode(B(0xE0, 0x01, 0x8B), 3, &pk, &copy), 0);
	assert_int_equal(pk.reason, 0x8B);
	free(copy);
	assert_int_equal(decode(B(0xE0, 0x09, 0x8E, 0x07, 0x1F, 0x00, 0x04, 't', 'a', 'k', 'e'),
				11, &pk, &copy), 0);
	assert_int_equal(pk.reason, 0x8E);
	assert_int_equal(pk.reason_string_len, 4);
	assert_memory_equal(pk.reason_string, "take", 4);
	free(copy);
	REFUSED(0xE0, 0x03, 0x8E, 0x05, 0x1F);
}

static void test_unexpected_types(void **state)
{
	(void)state;
	assert_string_equal(REFUSED(0x62, 0x02, 0x00, 0x01), "unexpected packet type"); /* PUBREL */
	REFUSED(0x40, 0x02, 0x00, 0x01);  /* PUBACK: we never publish */
	REFUSED(0x10, 0x00);              /* CONNECT */
	REFUSED(0x82, 0x00);              /* SUBSCRIBE */
	REFUSED(0xB0, 0x02, 0x00, 0x01);  /* UNSUBACK */
	REFUSED(0xC0, 0x00);              /* PINGREQ */
	REFUSED(0xF0, 0x00);              /* AUTH */
	REFUSED(0x00, 0x00);              /* reserved */
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(mqsub_utf8_valid((const uint8_t *)"", 0));
	assert_true(mqsub_utf8_valid((const uint8_t *)"sc/v1/dev/D1", 12));
	assert_true(mqsub_utf8_valid(B(0xC3, 0xA9), 2));             /* é */
	assert_true(mqsub_utf8_valid(B(0xE2, 0x82, 0xAC), 3));       /* € */
	assert_true(mqsub_utf8_valid(B(0xF0, 0x9F, 0x98, 0x80), 4)); /* U+1F600 */
	assert_true(mqsub_utf8_valid(B(0xF4, 0x8F, 0xBF, 0xBF), 4)); /* U+10FFFF */
	assert_false(mqsub_utf8_valid(B(0xF4, 0x90, 0x80, 0x80), 4)); /* past U+10FFFF */
	assert_false(mqsub_utf8_valid(B(0xE0, 0x80, 0x80), 3));      /* overlong */
	assert_false(mqsub_utf8_valid(B(0xF0, 0x80, 0x80, 0x80), 4));
	assert_false(mqsub_utf8_valid(B(0xED, 0xBF, 0xBF), 3));      /* surrogate */
	assert_false(mqsub_utf8_valid(B(0xC3), 1));                  /* cut off */
	assert_false(mqsub_utf8_valid(B(0xE2, 0x82), 2));
	assert_false(mqsub_utf8_valid(B(0x80), 1));                  /* lone continuation */
	assert_false(mqsub_utf8_valid(B(0xF8, 0x88, 0x80, 0x80, 0x80), 5));
	assert_false(mqsub_utf8_valid(B('a', 0x00), 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_subscribe),
		cmocka_unit_test(test_small_packets),
		cmocka_unit_test(test_publish_qos0),
		cmocka_unit_test(test_publish_qos1_properties),
		cmocka_unit_test(test_remaining_length),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_malformed_publish),
		cmocka_unit_test(test_qos2_decodes),
		cmocka_unit_test(test_connack),
		cmocka_unit_test(test_suback),
		cmocka_unit_test(test_pingresp_disconnect),
		cmocka_unit_test(test_unexpected_types),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
