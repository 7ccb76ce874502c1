/* shop_hash: FNV-1a (64 bit) and a Luhn checksum over binaries, as NIFs. */
#include <stdint.h>
#include <string.h>
#include <erl_nif.h>

static uint64_t fnv1a64(const unsigned char *p, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) {
    h ^= (uint64_t)p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* fnv1a64(binary) -> non-negative integer below 2^64 */
static ERL_NIF_TERM hash_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  ErlNifBinary bin;
  if (argc != 1 || !enif_inspect_iolist_as_binary(env, argv[0], &bin)) return enif_make_badarg(env);
  return enif_make_uint64(env, fnv1a64(bin.data, bin.size, 0xcbf29ce484222325ULL));
}

/* luhn_valid(binary of digits) -> true | false; anything but ASCII digits is badarg */
static ERL_NIF_TERM luhn_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
  ErlNifBinary bin;
  if (argc != 1 || !enif_inspect_binary(env, argv[0], &bin) || bin.size == 0) return enif_make_badarg(env);
  unsigned sum = 0;
  int twice = 0;
  for (size_t i = bin.size; i > 0; i--) {
    unsigned char c = bin.data[i - 1];
    if (c < '0' || c > '9') return enif_make_badarg(env);
    unsigned d = (unsigned)(c - '0');
    if (twice) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    twice = !twice;
  }
  return enif_make_atom(env, sum % 10 == 0 ? "true" : "false");
}

static ErlNifFunc funcs[] = {
  {"fnv1a64", 1, hash_nif, 0},
  {"luhn_valid?", 1, luhn_nif, 0},
};

ERL_NIF_INIT(Elixir.ShopHash, funcs, NULL, NULL, NULL, NULL)
