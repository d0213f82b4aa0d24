/*
 * The shape of BoringSSL's ssl/ssl_lib.cc where discovery looks: the
 * error reports of SSL_write, SSL_read (SSL_peek inlined), SSL_peek, the
 * shared read implementation, and neighbours that report some of the same
 * reasons. Built by the tests with clang in several layouts (PIE or not,
 * unwind tables or not, the old and the 2025 ERR_put_error), then
 * stripped; the unstripped build says where the functions really are.
 */
#include <stddef.h>
#include <string.h>

#line 14 "../../vendor/boringssl/ssl/ssl_lib.cc"

struct method {
	int (*read_app_data)(void *ssl, char *out, size_t n);
	int (*write_app_data)(void *ssl, int *needs_handshake, size_t *written, const void *buf, size_t n);
};

struct s3 {
	char *pending;
	size_t pending_len;
	int rwstate;
	int read_shutdown;
};

struct ssl {
	const struct method *method;
	void *do_handshake;
	void *quic_method;
	struct s3 *s3;
};

__attribute__((noinline, used)) void sink(void *p) { __asm__ volatile("" ::"r"(p) : "memory"); }

#ifdef NEW_ERR
__attribute__((noinline)) void ERR_put_error(int lib, int reason, const char *file, unsigned line)
{
	__asm__ volatile("" ::"r"(lib), "r"(reason), "r"(file), "r"(line) : "memory");
}
#define PUT_ERROR(reason) ERR_put_error(16, reason, __FILE__, __LINE__)
#else
__attribute__((noinline)) void ERR_put_error(int lib, int unused, int reason, const char *file, unsigned line)
{
	__asm__ volatile("" ::"r"(lib), "r"(unused), "r"(reason), "r"(file), "r"(line) : "memory");
}
#define PUT_ERROR(reason) ERR_put_error(16, 0, reason, __FILE__, __LINE__)
#endif

__attribute__((noinline)) int SSL_do_handshake(struct ssl *ssl)
{
	if (!ssl->do_handshake) {
		PUT_ERROR(226);
		return -1;
	}
	sink(ssl);
	return 1;
}

__attribute__((noinline)) static int ssl_read_impl(struct ssl *ssl)
{
	ssl->s3->rwstate = 0;
	if (!ssl->do_handshake) {
		PUT_ERROR(226);
		return -1;
	}
	while (ssl->s3->pending_len == 0) {
		int ret = SSL_do_handshake(ssl);
		if (ret < 0)
			return ret;
		if (ret == 0) {
			PUT_ERROR(215);
			return -1;
		}
		sink(ssl->s3);
	}
	return 1;
}

__attribute__((noinline)) int SSL_read(struct ssl *ssl, void *buf, int num)
{
	if (ssl->quic_method) {
		PUT_ERROR(66);
		return -1;
	}
	int ret = ssl_read_impl(ssl);
	if (ret <= 0 || num <= 0)
		return ret <= 0 ? ret : num;
	size_t todo = ssl->s3->pending_len < (size_t)num ? ssl->s3->pending_len : (size_t)num;
	memcpy(buf, ssl->s3->pending, todo);
	ssl->s3->pending += todo; /* SSL_read consumes; SSL_peek does not */
	ssl->s3->pending_len -= todo;
	return (int)todo;
}

__attribute__((noinline)) int SSL_peek(struct ssl *ssl, void *buf, int num)
{
	if (ssl->quic_method) {
		PUT_ERROR(66);
		return -1;
	}
	int ret = ssl_read_impl(ssl);
	if (ret <= 0 || num <= 0)
		return ret <= 0 ? ret : num;
	size_t todo = ssl->s3->pending_len < (size_t)num ? ssl->s3->pending_len : (size_t)num;
	memcpy(buf, ssl->s3->pending, todo);
	return (int)todo;
}

__attribute__((noinline)) int SSL_write(struct ssl *ssl, const void *buf, int num)
{
	ssl->s3->rwstate = 0;
	if (ssl->quic_method) {
		PUT_ERROR(66);
		return -1;
	}
	if (!ssl->do_handshake) {
		PUT_ERROR(226);
		return -1;
	}
	int ret, needs_handshake = 0;
	size_t written = 0;
	do {
		if (ssl->s3->read_shutdown) {
			ret = SSL_do_handshake(ssl);
			if (ret < 0)
				return ret;
			if (ret == 0) {
				PUT_ERROR(215);
				return -1;
			}
		}
		if (num < 0) {
			PUT_ERROR(111);
			return -1;
		}
		ret = ssl->method->write_app_data(ssl, &needs_handshake, &written, buf, (size_t)num);
	} while (needs_handshake);
	return ret <= 0 ? ret : (int)written;
}

__attribute__((noinline)) int SSL_shutdown(struct ssl *ssl)
{
	if (!ssl->do_handshake) {
		PUT_ERROR(226);
		return -1;
	}
	if (ssl->quic_method) {
		PUT_ERROR(291);
		return -1;
	}
	return ssl_read_impl(ssl);
}

int main(int argc, char **argv)
{
	static struct s3 s3;
	static struct ssl ssl = {.s3 = &s3};
	char buf[64];
	if (argc > 5) {
		/* Never run: keeps every function in the binary. */
		SSL_read(&ssl, buf, sizeof(buf));
		SSL_peek(&ssl, buf, sizeof(buf));
		SSL_write(&ssl, argv[0], argc);
		SSL_shutdown(&ssl);
	}
	return 0;
}
