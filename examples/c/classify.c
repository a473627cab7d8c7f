/* An app using the m4 C ABI: register an adapter with the m4fwd service, run one input through it,
 * print the answer. Build: see examples/c/CMakeLists.txt.
 *   classify [--socket PATH] ADAPTER.m4a NAME MODALITY INPUT      (MODALITY: image | audio | imu | text)
 */
#include <stdio.h>
#include <string.h>

#include "m4.h"

int main(int argc, char ** argv) {
    const char * socket = NULL;
    int          a      = 1;
    if (argc > 2 && strcmp(argv[1], "--socket") == 0) socket = argv[2], a = 3;
    if (argc - a != 4) {
        fprintf(stderr, "usage: classify [--socket PATH] ADAPTER.m4a NAME MODALITY INPUT\n");
        return 2;
    }
    const char *  file = argv[a], * name = argv[a + 1], * modality = argv[a + 2], * input = argv[a + 3];
    m4_client_t * c    = NULL;
    if (m4_client_open(socket, &c) != M4_OK) {
        fprintf(stderr, "cannot reach m4fwd: %s\n", m4_last_error(c));
        m4_client_close(c);
        return 1;
    }
    printf("connected as app %s, firmware %.16s…\n", m4_app_name(c), m4_firmware_fingerprint(c));
    m4_status s = m4_adapter_register_file(c, name, file, 1);
    if (s != M4_OK) {
        fprintf(stderr, "register failed (%d): %s\n", (int)s, m4_last_error(c));
        m4_client_close(c);
        return 1;
    }
    m4_result_t * r = NULL;
    s = strcmp(modality, "text") == 0 ? m4_infer_text(c, name, input, &r) : m4_infer_file(c, name, modality, input, &r);
    if (s == M4_ERR_BUSY) fprintf(stderr, "busy, retry after %u ms\n", m4_retry_after_ms(c));
    if (s != M4_OK) {
        fprintf(stderr, "infer failed (%d): %s\n", (int)s, m4_last_error(c));
        m4_client_close(c);
        return 1;
    }
    for (size_t i = 0; i < m4_result_score_count(r) && i < 3; ++i)
        printf("%-20s %.4f\n", m4_result_label(r, i), m4_result_score(r, i));
    if (m4_result_value_count(r)) printf("%zu values, first %.4f\n", m4_result_value_count(r), m4_result_values(r)[0]);
    if (*m4_result_text(r)) printf("%s\n", m4_result_text(r));
    m4_result_free(r);
    m4_client_close(c);
    return 0;
}
