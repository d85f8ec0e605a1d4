/*
 * MQTT 5 packet encoding and decoding for mqsub (see mqsub_codec.h).
 * References are to the MQTT 5.0 specification (OASIS, 2019).
 */
#include "mqsub_codec.h"

#include <string.h>

/* Property identifiers (MQTT 5 section 2.2.2.2) that we read or reject. */
#define PROP_SERVER_KEEPALIVE 0x13
#define PROP_REASON_STRING 0x1F
#define PROP_TOPIC_ALIAS 0x23
#define PROP_SESSION_EXPIRY 0x11
#define PROP_RECEIVE_MAX 0x21
#define PROP_MAX_PACKET 0x27

#define STRING_MAX 65535u

/* --- encoding ---------------------------------------------------------- */

static void put_u8(struct strbuf *b, uint8_t v)
{
	strbuf_append(b, (const char *)&v, 1);
}

static void put_u16(struct strbuf *b, uint16_t v)
{
	const uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	strbuf_append(b, (const char *)x, 2);
}

static void put_u32(struct strbuf *b, uint32_t v)
{
	const uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
			       (uint8_t)v };
	strbuf_append(b, (const char *)x, 4);
}

static size_t varint_len(uint32_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void put_varint(struct strbuf *b, uint32_t v)
{
	do {
		uint8_t byte = v % 128;
		v /= 128;
		if (v > 0)
			byte |= 0x80;
		put_u8(b, byte);
	} while (v > 0);
}

/* A length-prefixed string (or binary data: the same encoding). */
static void put_str(struct strbuf *b, const char *s, size_t len)
{
	put_u16(b, (uint16_t)len);
	strbuf_append(b, s, len);
}

static bool str_ok(const char *s, size_t len)
{
	return len <= STRING_MAX && mqsub_utf8_valid((const uint8_t *)s, len);
}

static int finish(const struct strbuf *b)
{
	return strbuf_ok(b) ? 0 : -1;
}

int mqsub_encode_connect(struct strbuf *b, const struct mqsub_connect_fields *c)
{
	size_t id_len = strlen(c->client_id);
	size_t user_len = c->user != NULL ? strlen(c->user) : 0;
	size_t pass_len = c->pass != NULL ? strlen(c->pass) : 0;
	if (!str_ok(c->client_id, id_len) || (c->user != NULL && !str_ok(c->user, user_len)) ||
	    pass_len > STRING_MAX || c->receive_max == 0 || c->max_packet == 0)
		return -1;

	/*
	 * Properties: Session Expiry Interval, Receive Maximum, Maximum Packet
	 * Size. Topic Alias Maximum is left out: absent means 0, so the broker
	 * never sends a topic alias (mqsub_decode() rejects one).
	 */
	const uint32_t props = 5 + 3 + 5;
	size_t rem = 6 + 1 + 1 + 2 + varint_len(props) + props + 2 + id_len;
	uint8_t flags = 0; /* clean start off, no will */
	if (c->user != NULL) {
		flags |= 0x80;
		rem += 2 + user_len;
	}
	if (c->pass != NULL) {
		flags |= 0x40;
		rem += 2 + pass_len;
	}
	put_u8(b, MQSUB_CONNECT << 4);
	put_varint(b, (uint32_t)rem);
	put_str(b, "MQTT", 4);
	put_u8(b, 5); /* protocol version */
	put_u8(b, flags);
	put_u16(b, c->keepalive_s);
	put_varint(b, props);
	put_u8(b, PROP_SESSION_EXPIRY);
	put_u32(b, c->session_expiry_s);
	put_u8(b, PROP_RECEIVE_MAX);
	put_u16(b, c->receive_max);
	put_u8(b, PROP_MAX_PACKET);
	put_u32(b, c->max_packet);
	put_str(b, c->client_id, id_len);
	if (c->user != NULL)
		put_str(b, c->user, user_len);
	if (c->pass != NULL)
		put_str(b, c->pass, pass_len);
	return finish(b);
}

int mqsub_encode_subscribe(struct strbuf *b, uint16_t packet_id, const struct mqsub_filter *f,
			   size_t n)
{
	if (packet_id == 0 || n == 0)
		return -1;
	size_t rem = 2 + 1; /* packet id, empty properties */
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(f[i].filter);
		if (len == 0 || !str_ok(f[i].filter, len) || f[i].qos < 0 || f[i].qos > 1)
			return -1;
		rem += 2 + len + 1;
		if (rem > MQSUB_VARINT_MAX)
			return -1;
	}
	/* SUBSCRIBE's fixed header flags are 0010 (MQTT 5 section 3.8.1). */
	put_u8(b, MQSUB_SUBSCRIBE << 4 | 0x02);
	put_varint(b, (uint32_t)rem);
	put_u16(b, packet_id);
	put_varint(b, 0);
	for (size_t i = 0; i < n; i++) {
		put_str(b, f[i].filter, strlen(f[i].filter));
		/* Bits 0-1 QoS, bit 2 No Local 0, bit 3 Retain As Published 0,
		 * bits 4-5 Retain Handling 1. */
		put_u8(b, (uint8_t)(f[i].qos | 0x10));
	}
	return finish(b);
}

int mqsub_encode_puback(struct strbuf *b, uint16_t packet_id)
{
	if (packet_id == 0)
		return -1;
	put_u8(b, MQSUB_PUBACK << 4);
	put_u8(b, 2);
	put_u16(b, packet_id);
	return finish(b);
}

int mqsub_encode_pingreq(struct strbuf *b)
{
	put_u8(b, MQSUB_PINGREQ << 4);
	put_u8(b, 0);
	return finish(b);
}

int mqsub_encode_disconnect(struct strbuf *b)
{
	put_u8(b, MQSUB_DISCONNECT << 4);
	put_u8(b, 0);
	return finish(b);
}

/* --- decoding ---------------------------------------------------------- */

bool mqsub_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		uint32_t cp, min;
		size_t more;
		if (c < 0x80) {
			if (c == 0)
				return false;
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			cp = c & 0x1F;
			more = 1;
			min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			cp = c & 0x0F;
			more = 2;
			min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			cp = c & 0x07;
			more = 3;
			min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= more)
			return false;
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += more + 1;
	}
	return true;
}

/*
 * A variable byte integer at p, n bytes available: 1 with *v and *used set,
 * 0 when cut off, -1 when longer than 4 bytes (MQTT 5 section 1.5.5).
 */
static int varint(const uint8_t *p, size_t n, uint32_t *v, size_t *used)
{
	uint32_t x = 0;
	for (size_t i = 0; i < 4; i++) {
		if (i >= n)
			return 0;
		x |= (uint32_t)(p[i] & 0x7F) << (7 * i);
		if ((p[i] & 0x80) == 0) {
			*v = x;
			*used = i + 1;
			return 1;
		}
	}
	return -1;
}

int mqsub_fixed_header(const uint8_t *p, size_t n, size_t *header_len, uint32_t *remaining)
{
	size_t used;
	if (n == 0)
		return 0;
	int rc = varint(p + 1, n - 1, remaining, &used);
	if (rc == 1)
		*header_len = 1 + used;
	return rc;
}

/* A bounded reader over part of a packet; every read checks what is left. */
struct rd {
	const uint8_t *p;
	size_t n;
	size_t off;
};

static size_t rd_left(const struct rd *r)
{
	return r->n - r->off;
}

static int rd_bytes(struct rd *r, size_t len, const uint8_t **out)
{
	if (rd_left(r) < len)
		return -1;
	*out = r->p + r->off;
	r->off += len;
	return 0;
}

static int rd_u8(struct rd *r, uint8_t *v)
{
	const uint8_t *x;
	if (rd_bytes(r, 1, &x) != 0)
		return -1;
	*v = x[0];
	return 0;
}

static int rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *x;
	if (rd_bytes(r, 2, &x) != 0)
		return -1;
	*v = (uint16_t)(x[0] << 8 | x[1]);
	return 0;
}

static int rd_varint(struct rd *r, uint32_t *v)
{
	size_t used;
	if (varint(r->p + r->off, rd_left(r), v, &used) != 1)
		return -1;
	r->off += used;
	return 0;
}

/* A length-prefixed string or binary datum. */
static int rd_str(struct rd *r, const uint8_t **s, size_t *len)
{
	uint16_t l;
	if (rd_u16(r, &l) != 0 || rd_bytes(r, l, s) != 0)
		return -1;
	*len = l;
	return 0;
}

static int fail(struct mqsub_packet *pk, const char *why)
{
	pk->error = why;
	return -1;
}

/*
 * Reads a property list (its length, then the properties), keeping what
 * pk wants and skipping the rest by type (MQTT 5 section 2.2.2.2). An
 * unknown identifier is malformed: we could not know its length.
 */
static int rd_props(struct rd *r, struct mqsub_packet *pk)
{
	uint32_t len;
	const uint8_t *start;
	if (rd_varint(r, &len) != 0)
		return fail(pk, "bad property length");
	if (rd_bytes(r, len, &start) != 0)
		return fail(pk, "properties past the end of the packet");
	struct rd pr = { start, len, 0 };
	while (rd_left(&pr) > 0) {
		uint32_t id;
		const uint8_t *x;
		size_t l;
		uint16_t v16;
		uint32_t vi;
		int rc;
		/* The identifier is a variable byte integer; every one defined fits one byte. */
		if (rd_varint(&pr, &id) != 0)
			return fail(pk, "bad property identifier");
		switch (id) {
		case 0x01: case 0x17: case 0x19: case 0x24: case 0x25:
		case 0x28: case 0x29: case 0x2A:
			rc = rd_bytes(&pr, 1, &x);
			break;
		case PROP_SERVER_KEEPALIVE:
			rc = rd_u16(&pr, &v16);
			if (rc == 0)
				pk->server_keepalive = v16;
			break;
		case PROP_TOPIC_ALIAS:
			if (pk->type == MQSUB_PUBLISH)
				return fail(pk, "topic alias although none was allowed");
			/* fall through */
		case PROP_RECEIVE_MAX: case 0x22:
			rc = rd_bytes(&pr, 2, &x);
			break;
		case 0x02: case PROP_SESSION_EXPIRY: case 0x18: case PROP_MAX_PACKET:
			rc = rd_bytes(&pr, 4, &x);
			break;
		case 0x0B: /* Subscription Identifier */
			rc = rd_varint(&pr, &vi);
			break;
		case PROP_REASON_STRING:
			rc = rd_str(&pr, &x, &l);
			if (rc == 0) {
				pk->reason_string = (const char *)x;
				pk->reason_string_len = l;
			}
			break;
		case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16:
		case 0x1A: case 0x1C:
			rc = rd_str(&pr, &x, &l);
			break;
		case 0x26: /* User Property: a string pair */
			rc = rd_str(&pr, &x, &l);
			if (rc == 0)
				rc = rd_str(&pr, &x, &l);
			break;
		default:
			return fail(pk, "unknown property");
		}
		if (rc != 0)
			return fail(pk, "property past the end of the properties");
	}
	return 0;
}

static int decode_connack(struct rd *r, struct mqsub_packet *pk)
{
	uint8_t flags;
	if (rd_u8(r, &flags) != 0 || rd_u8(r, &pk->reason) != 0)
		return fail(pk, "connack too short");
	if ((flags & 0xFE) != 0)
		return fail(pk, "connack reserved flags set");
	pk->session_present = (flags & 1) != 0;
	/* A refusal may come without properties from a lenient broker. */
	if (rd_left(r) > 0 && rd_props(r, pk) != 0)
		return -1;
	return 0;
}

static int decode_publish(uint8_t *p, struct rd *r, uint8_t flags, struct mqsub_packet *pk)
{
	const uint8_t *topic;
	size_t topic_len;
	pk->retain = (flags & 0x01) != 0;
	pk->qos = (flags >> 1) & 0x03;
	pk->dup = (flags & 0x08) != 0;
	if (pk->qos == 3)
		return fail(pk, "publish with qos 3");
	if (pk->qos == 0 && pk->dup)
		return fail(pk, "publish with dup at qos 0");
	if (rd_str(r, &topic, &topic_len) != 0)
		return fail(pk, "topic past the end of the packet");
	/* Aliases are not enabled, so every PUBLISH names its topic. */
	if (topic_len == 0)
		return fail(pk, "empty topic");
	if (!mqsub_utf8_valid(topic, topic_len))
		return fail(pk, "topic is not valid utf-8");
	if (memchr(topic, '+', topic_len) != NULL || memchr(topic, '#', topic_len) != NULL)
		return fail(pk, "wildcard in topic");
	if (pk->qos > 0) {
		if (rd_u16(r, &pk->packet_id) != 0)
			return fail(pk, "packet id past the end of the packet");
		if (pk->packet_id == 0)
			return fail(pk, "packet id 0");
	}
	if (rd_props(r, pk) != 0)
		return -1;
	pk->payload_len = rd_left(r);
	(void)rd_bytes(r, pk->payload_len, &pk->payload);
	/* The byte after the topic (packet id or property length) is read. */
	size_t end = (size_t)(topic - p) + topic_len;
	p[end] = '\0';
	pk->topic = (const char *)topic;
	pk->topic_len = topic_len;
	return 0;
}

static int decode_suback(struct rd *r, struct mqsub_packet *pk)
{
	if (rd_u16(r, &pk->packet_id) != 0)
		return fail(pk, "suback too short");
	if (rd_props(r, pk) != 0)
		return -1;
	pk->payload_len = rd_left(r);
	if (pk->payload_len == 0)
		return fail(pk, "suback without reason codes");
	(void)rd_bytes(r, pk->payload_len, &pk->payload);
	return 0;
}

static int decode_disconnect(struct rd *r, struct mqsub_packet *pk)
{
	/* Remaining length 0 means reason 0 and no properties. */
	if (rd_left(r) == 0)
		return 0;
	(void)rd_u8(r, &pk->reason);
	if (rd_left(r) > 0 && rd_props(r, pk) != 0)
		return -1;
	return 0;
}

int mqsub_decode(uint8_t *p, size_t n, struct mqsub_packet *pk)
{
	size_t hl;
	uint32_t rem;
	memset(pk, 0, sizeof(*pk));
	pk->server_keepalive = -1;
	int rc = mqsub_fixed_header(p, n, &hl, &rem);
	if (rc < 0)
		return fail(pk, "remaining length longer than 4 bytes");
	if (rc == 0 || hl + rem != n)
		return fail(pk, "packet length does not match its remaining length");
	pk->type = p[0] >> 4;
	uint8_t flags = p[0] & 0x0F;
	struct rd r = { p + hl, rem, 0 };
	if (pk->type != MQSUB_CONNACK && pk->type != MQSUB_PUBLISH && pk->type != MQSUB_SUBACK &&
	    pk->type != MQSUB_PINGRESP && pk->type != MQSUB_DISCONNECT)
		return fail(pk, "unexpected packet type");
	if (pk->type != MQSUB_PUBLISH && flags != 0)
		return fail(pk, "reserved header flags set");
	switch (pk->type) {
	case MQSUB_CONNACK:
		rc = decode_connack(&r, pk);
		break;
	case MQSUB_PUBLISH:
		rc = decode_publish(p, &r, flags, pk);
		break;
	case MQSUB_SUBACK:
		rc = decode_suback(&r, pk);
		break;
	case MQSUB_DISCONNECT:
		rc = decode_disconnect(&r, pk);
		break;
	default: /* PINGRESP: no fields */
		rc = 0;
		break;
	}
	if (rc == 0 && rd_left(&r) > 0)
		return fail(pk, "bytes after the end of the packet's fields");
	return rc;
}
