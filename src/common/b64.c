/* base64 for the JSON that carries bytes (output events, stdin, the agent link's saved state,
 * snapshot fields): OpenSSL's block codec, no line breaks, with the checks a text that came
 * from outside needs (include/godwit/util.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "godwit/util.h"

#define B64_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

char *gw_b64_encode(const void *data, size_t len)
{
	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (!out)
		return NULL;
	int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

int gw_b64_decode(const char *b64, unsigned char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	size_t bl = strlen(b64);
	if (bl % 4 || bl > INT_MAX)
		return -EINVAL;
	/* padding only at the end, at most two; nothing but the alphabet before it (the codec
	 * itself would skip blanks and take '=' inside the text) */
	size_t pad = 0;
	while (pad < bl && pad < 3 && b64[bl - 1 - pad] == '=')
		pad++;
	if (pad > 2 || strspn(b64, B64_ALPHABET) != bl - pad)
		return -EINVAL;
	unsigned char *buf = malloc(bl / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)bl);
	/* the codec counts the padding as decoded zero bytes */
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	*len = (size_t)n - pad;
	return 0;
}
