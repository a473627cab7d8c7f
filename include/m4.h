/* m4.h — the stable C ABI of the m4 client: apps call the m4fwd system service to run the
 * on-device foundation model with their own adapters. Links only the client library.
 *
 *     m4_client_t * c = NULL;
 *     if (m4_client_open(NULL, &c) != M4_OK) { fprintf(stderr, "%s\n", m4_last_error(c)); ... }
 *     m4_adapter_register_file(c, "shirt", "shirt.m4a", 1);
 *     m4_result_t * r = NULL;
 *     if (m4_infer_file(c, "shirt", "image", "photo.png", &r) == M4_OK)
 *         printf("%s %.3f\n", m4_result_label(r, 0), m4_result_score(r, 0));
 *     m4_result_free(r);
 *     const uint8_t * png; size_t n;                            // super-resolution (path 4)
 *     if (m4_generate_image(c, "sr", "small.png", &r) == M4_OK && (n = m4_result_image(r, &png, NULL, NULL)))
 *         fwrite(png, 1, n, big_png_file);
 *     m4_result_free(r);
 *     m4_client_close(c);
 *
 * Rules: out-parameters come last; every m4_status other than M4_OK leaves a message in
 * m4_last_error(client); M4_ERR_BUSY comes with m4_retry_after_ms(client). No function throws or
 * aborts on bad input. A client handle is not thread-safe: use one per thread.
 */
#ifndef M4_H
#define M4_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The same numbers as m4.v1.Status in proto/m4.proto, plus transport errors. */
typedef enum m4_status {
    M4_OK                    = 0,
    M4_ERR_INVALID_ARGUMENT  = 1,
    M4_ERR_NOT_FOUND         = 2,
    M4_ERR_PERMISSION_DENIED = 3,
    M4_ERR_INCOMPATIBLE      = 4,
    M4_ERR_BUSY              = 5,
    M4_ERR_DEADLINE_EXCEEDED = 6,
    M4_ERR_QUOTA_EXCEEDED    = 7,
    M4_ERR_CANCELLED         = 8,
    M4_ERR_UNAVAILABLE       = 9,
    M4_ERR_INTERNAL          = 10,
    M4_ERR_IO                = 100 /* cannot reach the daemon, or the connection broke */
} m4_status;

typedef struct m4_client m4_client_t;
typedef struct m4_result m4_result_t;
typedef struct m4_options m4_options_t;

/* socket_path NULL: the default ($XDG_RUNTIME_DIR/m4/m4fwd.sock, else /run/m4/m4fwd.sock).
 * On failure *out still receives a handle holding the error message (close it). */
m4_status   m4_client_open(const char * socket_path, m4_client_t ** out);
void        m4_client_close(m4_client_t * client);
const char * m4_last_error(const m4_client_t * client);
uint32_t    m4_retry_after_ms(const m4_client_t * client);
/* The firmware fingerprint the daemon serves, and the app name it knows this process by. */
const char * m4_firmware_fingerprint(const m4_client_t * client);
const char * m4_app_name(const m4_client_t * client);

m4_status m4_adapter_register_file(m4_client_t * client, const char * name, const char * path, int replace);
m4_status m4_adapter_remove(m4_client_t * client, const char * name);

/* Inference, one input per call. adapter NULL or "": the firmware alone. */
m4_status m4_infer_text(m4_client_t * client, const char * adapter, const char * text, m4_result_t ** out);
/* modality "image" | "audio" | "imu"; the file is passed to the daemon as a descriptor. */
m4_status m4_infer_file(m4_client_t * client, const char * adapter, const char * modality, const char * path,
                        m4_result_t ** out);
m4_status m4_infer_signal(m4_client_t * client, const char * adapter, const char * modality, const float * values,
                          size_t count, m4_result_t ** out);

/* Generation settings for m4_generate. Each value set overrides the adapter manifest's default;
 * the daemon checks the ranges before anything runs (M4_ERR_INVALID_ARGUMENT naming the value):
 * max_new_tokens 1..context, temperature 0..100 (0: greedy), top_k 0..vocabulary (0: off),
 * top_p (0, 1] (1: off), up to 8 stop strings of 1..64 bytes (they replace the manifest's list). */
m4_options_t * m4_options_create(void);
void m4_options_destroy(m4_options_t * options);
void m4_options_set_max_new_tokens(m4_options_t * options, uint32_t n);
void m4_options_set_temperature(m4_options_t * options, float temperature);
void m4_options_set_top_k(m4_options_t * options, uint32_t k);
void m4_options_set_top_p(m4_options_t * options, float p);
void m4_options_set_seed(m4_options_t * options, uint64_t seed);
m4_status m4_options_add_stop(m4_options_t * options, const char * stop);
/* Constrained output (one kind per request): the text is exactly one of the choices added, or
 * compact JSON following a JSON-schema subset (docs/service.md). A choice the vocabulary cannot
 * spell, or a malformed / unsupported / unsatisfiable schema, is M4_ERR_INVALID_ARGUMENT from
 * m4_generate before anything runs. */
m4_status m4_options_add_choice(m4_options_t * options, const char * choice);
m4_status m4_options_set_json_schema(m4_options_t * options, const char * schema);

/* Generates text from `text` (backbone path; adapter NULL or "": the firmware alone). options may
 * be NULL (the adapter's defaults). */
m4_status m4_generate(m4_client_t * client, const char * adapter, const char * text, const m4_options_t * options,
                      m4_result_t ** out);
/* The text's embedding in the shared space (the one image, audio and IMU embeddings live in):
 * m4_result_values() gives embed_dim unit-norm floats. */
m4_status m4_embed_text(m4_client_t * client, const char * text, m4_result_t ** out);

/* The generator path (path 4): the image file at `path` (PNG/JPEG/BMP/GIF, at most the image
 * decoder's S×S; passed to the daemon as a descriptor) goes through the image decoder alone and
 * comes back as an S×S image — read it with m4_result_image(). adapter NULL or "": the firmware's
 * decoder alone; otherwise an image-output adapter (a text adapter is M4_ERR_INCOMPATIBLE). A
 * firmware without an image decoder is M4_ERR_INCOMPATIBLE, an input larger than the decoder's grid
 * or not an image M4_ERR_INVALID_ARGUMENT. */
m4_status m4_generate_image(m4_client_t * client, const char * adapter, const char * path, m4_result_t ** out);

/* The full path into the image decoder: the description `text` ("a large red circle at the top
 * left") goes through the backbone, the decoder's projector and the image decoder and comes back as
 * an S×S image — read it with m4_result_image(). adapter NULL or "": the firmware alone; otherwise
 * an image-output adapter of the full path. A firmware without an image decoder, or whose decoder
 * has no projector from the backbone, is M4_ERR_INCOMPATIBLE; an empty or too long text
 * M4_ERR_INVALID_ARGUMENT. */
m4_status m4_draw_image(m4_client_t * client, const char * adapter, const char * text, m4_result_t ** out);
/* The generator path over text (path 4, the speech decoder): `text` (letters, space and '-.,;
 * at most the decoder's max_chars) becomes speech — read it with m4_result_audio(). adapter NULL
 * or "": the firmware's speech decoder alone; otherwise an audio-output adapter (another kind is
 * M4_ERR_INCOMPATIBLE). A firmware without a speech decoder is M4_ERR_INCOMPATIBLE, text too long
 * or outside the alphabet M4_ERR_INVALID_ARGUMENT. */
m4_status m4_synthesize(m4_client_t * client, const char * adapter, const char * text, m4_result_t ** out);

/* The daemon's status as JSON (the protobuf JSON mapping of m4.v1.StatusReply): firmware, queues,
 * and per-app usage — "apps": requests, items, promptTokens, generatedTokens, cpuUs, queueUs,
 * peakAdapterBytes, peakKvBytes, busy … (an app sees its own line, the admin every app's).
 * Free *json with m4_string_free. */
m4_status m4_status_json(m4_client_t * client, char ** json);
void m4_string_free(char * s);

/* Results: classification scores (best first), values (regression / embedding), generated text. */
size_t        m4_result_score_count(const m4_result_t * r);
const char *  m4_result_label(const m4_result_t * r, size_t i);
float         m4_result_score(const m4_result_t * r, size_t i);
size_t        m4_result_value_count(const m4_result_t * r);
const float * m4_result_values(const m4_result_t * r);
const char *  m4_result_text(const m4_result_t * r);
size_t m4_result_token_count(const m4_result_t * r);
const int32_t * m4_result_tokens(const m4_result_t * r);
const char * m4_result_stop_reason(const m4_result_t * r); /* "eos", "stop", "length", "context"; "" */
/* An image output (generator path): returns the PNG's byte count (0 when the result has no image)
 * and points *png at its bytes — owned by the result, valid until m4_result_free, not copied.
 * width / height may be NULL. The bytes are 8-bit RGB PNG, the file `m4fw run --out` writes. */
size_t m4_result_image(const m4_result_t * r, const uint8_t ** png, uint32_t * width, uint32_t * height);
/* An audio output (generator path over text): returns the WAV file's byte count (0 when the result
 * has no audio) and points *wav at its bytes — owned by the result, valid until m4_result_free, not
 * copied. sample_rate may be NULL. The bytes are 16-bit PCM mono WAV, the file `m4fw run --out` writes. */
size_t m4_result_audio(const m4_result_t * r, const uint8_t ** wav, uint32_t * sample_rate);
void m4_result_free(m4_result_t * r);

#ifdef __cplusplus
}
#endif
#endif /* M4_H */
