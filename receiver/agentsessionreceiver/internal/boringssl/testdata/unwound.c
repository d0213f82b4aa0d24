/*
 * A function with unwind information linked ahead of ssl_lib.c built
 * without: a partial .eh_frame_hdr whose nearest entry before SSL_write is
 * not SSL_write's function, as in Bun's musl build.
 */
int unwound(int x)
{
	return x * 3 + 1;
}
