/* test-netaddr.c - the address classifier of the http source: which
 * connections count as public, loopback, link-local, private, unspecified
 * or reserved (lib/source/http.c, scimg_int_addr_class). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "scimg-int.h"
#include "unit.h"

static int cls(const char *text)
{
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;

	memset(&in4, 0, sizeof(in4));
	memset(&in6, 0, sizeof(in6));
	if (inet_pton(AF_INET, text, &in4.sin_addr) == 1) {
		in4.sin_family = AF_INET;
		return scimg_int_addr_class((struct sockaddr *)&in4);
	}
	if (inet_pton(AF_INET6, text, &in6.sin6_addr) == 1) {
		in6.sin6_family = AF_INET6;
		return scimg_int_addr_class((struct sockaddr *)&in6);
	}
	fprintf(stderr, "bad address in the test: %s\n", text);
	return -2;
}

#define IS(addr, c) do { \
	int got_ = cls(addr); \
	if (got_ != (c)) \
		fprintf(stderr, "%s: %s, expected %s\n", addr, \
			scimg_int_addr_class_name(got_), scimg_int_addr_class_name(c)); \
	CHECK(got_ == (c)); \
} while (0)

int main(void)
{
	struct sockaddr sa;

	/* IPv4 */
	IS("8.8.8.8", SCIMG_ADDR_PUBLIC);
	IS("1.1.1.1", SCIMG_ADDR_PUBLIC);
	IS("93.184.216.34", SCIMG_ADDR_PUBLIC);
	IS("127.0.0.1", SCIMG_ADDR_LOOPBACK);
	IS("127.255.255.254", SCIMG_ADDR_LOOPBACK);
	IS("169.254.169.254", SCIMG_ADDR_LINKLOCAL);
	IS("169.254.0.1", SCIMG_ADDR_LINKLOCAL);
	IS("169.253.255.255", SCIMG_ADDR_PUBLIC);
	IS("10.0.0.1", SCIMG_ADDR_PRIVATE);
	IS("10.255.255.255", SCIMG_ADDR_PRIVATE);
	IS("11.0.0.1", SCIMG_ADDR_PUBLIC);
	IS("172.16.0.1", SCIMG_ADDR_PRIVATE);
	IS("172.31.255.255", SCIMG_ADDR_PRIVATE);
	IS("172.15.255.255", SCIMG_ADDR_PUBLIC);
	IS("172.32.0.0", SCIMG_ADDR_PUBLIC);
	IS("192.168.1.1", SCIMG_ADDR_PRIVATE);
	IS("192.169.0.1", SCIMG_ADDR_PUBLIC);
	IS("100.64.0.1", SCIMG_ADDR_PRIVATE);
	IS("100.127.255.255", SCIMG_ADDR_PRIVATE);
	IS("100.63.255.255", SCIMG_ADDR_PUBLIC);
	IS("100.128.0.0", SCIMG_ADDR_PUBLIC);
	IS("0.0.0.0", SCIMG_ADDR_UNSPECIFIED);
	IS("0.1.2.3", SCIMG_ADDR_UNSPECIFIED);
	IS("224.0.0.1", SCIMG_ADDR_RESERVED);
	IS("240.0.0.1", SCIMG_ADDR_RESERVED);
	IS("255.255.255.255", SCIMG_ADDR_RESERVED);
	IS("192.0.0.170", SCIMG_ADDR_RESERVED);
	IS("198.18.0.1", SCIMG_ADDR_RESERVED);
	IS("198.20.0.1", SCIMG_ADDR_PUBLIC);

	/* IPv6 */
	IS("2606:4700:4700::1111", SCIMG_ADDR_PUBLIC);
	IS("2a00:1450:4001:82a::200e", SCIMG_ADDR_PUBLIC);
	IS("::1", SCIMG_ADDR_LOOPBACK);
	IS("::", SCIMG_ADDR_UNSPECIFIED);
	IS("fe80::1", SCIMG_ADDR_LINKLOCAL);
	IS("febf::1", SCIMG_ADDR_LINKLOCAL);
	IS("fd00:ec2::254", SCIMG_ADDR_PRIVATE);
	IS("fc00::1", SCIMG_ADDR_PRIVATE);
	IS("fec0::1", SCIMG_ADDR_PRIVATE);
	IS("fe00::1", SCIMG_ADDR_PUBLIC);
	IS("ff02::1", SCIMG_ADDR_RESERVED);
	IS("2001:db8::1", SCIMG_ADDR_RESERVED);
	/* an IPv4 address inside an IPv6 one counts as itself */
	IS("::ffff:127.0.0.1", SCIMG_ADDR_LOOPBACK);
	IS("::ffff:169.254.169.254", SCIMG_ADDR_LINKLOCAL);
	IS("::ffff:10.1.2.3", SCIMG_ADDR_PRIVATE);
	IS("::ffff:100.64.1.1", SCIMG_ADDR_PRIVATE);
	IS("::ffff:0.0.0.0", SCIMG_ADDR_UNSPECIFIED);
	IS("::ffff:8.8.8.8", SCIMG_ADDR_PUBLIC);
	IS("::127.0.0.1", SCIMG_ADDR_LOOPBACK);
	IS("::8.8.8.8", SCIMG_ADDR_PUBLIC);
	IS("64:ff9b::a9fe:a9fe", SCIMG_ADDR_LINKLOCAL);
	IS("64:ff9b::808:808", SCIMG_ADDR_PUBLIC);
	IS("2002:7f00:1::", SCIMG_ADDR_LOOPBACK);
	IS("2002:c0a8:101::1", SCIMG_ADDR_PRIVATE);
	IS("2002:808:808::1", SCIMG_ADDR_PUBLIC);

	/* other families are not classified */
	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	CHECK(scimg_int_addr_class(&sa) == -1);
	UNIT_DONE();
}
