// Implements include/m4.h on top of the C++ client. No exception crosses this boundary.
#include "m4.h"

#include <fcntl.h>
#include <unistd.h>

#include <google/protobuf/util/json_util.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "base/mapped_file.h"
#include "m4/client.h"

struct m4_client {
    std::unique_ptr<m4::client::Client> impl;
    std::string error;
    uint32_t retry_after_ms = 0;
};

struct m4_result {
    m4::v1::Result result;
};

struct m4_options {
    m4::v1::Infer settings;  // only the generation fields are used
};

namespace {

m4_status fail(m4_client_t * c, m4_status s, const std::string & msg) {
    if (c) c->error = msg;
    return s;
}

// Runs a call and maps the outcome; on OK fills *resp.
m4_status finish(m4_client_t * c, m4::Result<m4::v1::Response> r, m4::v1::Response * resp) {
    if (!r) return fail(c, M4_ERR_IO, r.status().message());
    c->retry_after_ms = r->retry_after_ms();
    if (r->status() != m4::v1::STATUS_OK) return fail(c, static_cast<m4_status>(r->status()), r->message());
    c->error.clear();
    if (resp) *resp = std::move(r).value();
    return M4_OK;
}

m4_status infer(m4_client_t * c, const m4::v1::Infer & req, const std::vector<int> & fds, m4_result_t ** out) {
    if (!c || !c->impl || !out) return fail(c, M4_ERR_INVALID_ARGUMENT, "null argument");
    *out = nullptr;
    m4::v1::Response resp;
    m4_status s = finish(c, c->impl->infer(req, fds), &resp);
    if (s != M4_OK) return s;
    if (resp.infer().results_size() < 1) return fail(c, M4_ERR_INTERNAL, "daemon returned no result");
    *out           = new m4_result();
    (*out)->result = std::move(*resp.mutable_infer()->mutable_results(0));  // moved: an image is not copied
    return M4_OK;
}

}  // namespace

extern "C" {

m4_status m4_client_open(const char * socket_path, m4_client_t ** out) {
    if (!out) return M4_ERR_INVALID_ARGUMENT;
    try {
        *out   = new m4_client();
        auto r = m4::client::Client::connect(socket_path ? socket_path : m4::client::default_socket_path());
        if (!r) return fail(*out, M4_ERR_IO, r.status().message());
        (*out)->impl = std::move(r).value();
        return M4_OK;
    } catch (const std::exception & e) {
        return fail(*out, M4_ERR_INTERNAL, e.what());
    }
}

void m4_client_close(m4_client_t * c) {
    delete c;
}
const char * m4_last_error(const m4_client_t * c) {
    return c ? c->error.c_str() : "null client";
}
uint32_t m4_retry_after_ms(const m4_client_t * c) {
    return c ? c->retry_after_ms : 0;
}
const char * m4_firmware_fingerprint(const m4_client_t * c) {
    return c && c->impl ? c->impl->hello().firmware_fingerprint().c_str() : "";
}
const char * m4_app_name(const m4_client_t * c) {
    return c && c->impl ? c->impl->hello().app().c_str() : "";
}

m4_status m4_adapter_register_file(m4_client_t * c, const char * name, const char * path, int replace) {
    if (!c || !c->impl || !name || !path) return fail(c, M4_ERR_INVALID_ARGUMENT, "null argument");
    try {
        auto bytes = m4::read_file_bytes(path);
        if (!bytes) return fail(c, M4_ERR_INVALID_ARGUMENT, bytes.status().message());
        return finish(c, c->impl->register_adapter(name, *bytes, replace != 0), nullptr);
    } catch (const std::exception & e) {
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_status m4_adapter_remove(m4_client_t * c, const char * name) {
    if (!c || !c->impl || !name) return fail(c, M4_ERR_INVALID_ARGUMENT, "null argument");
    try {
        return finish(c, c->impl->remove_adapter(name), nullptr);
    } catch (const std::exception & e) {
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_status m4_infer_text(m4_client_t * c, const char * adapter, const char * text, m4_result_t ** out) {
    if (!text) return fail(c, M4_ERR_INVALID_ARGUMENT, "null text");
    try {
        m4::v1::Infer req;
        req.set_adapter(adapter ? adapter : "");
        req.add_inputs()->set_text(text);
        return infer(c, req, {}, out);
    } catch (const std::exception & e) {
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_status m4_infer_file(m4_client_t * c, const char * adapter, const char * modality, const char * path,
                        m4_result_t ** out) {
    if (!modality || !path) return fail(c, M4_ERR_INVALID_ARGUMENT, "null argument");
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(c, M4_ERR_INVALID_ARGUMENT, std::string(path) + ": cannot open");
    try {
        m4::v1::Infer req;
        req.set_adapter(adapter ? adapter : "");
        auto * in = req.add_inputs();
        in->set_modality(modality);
        in->set_fd_attached(true);
        m4_status s = infer(c, req, {fd}, out);
        ::close(fd);
        return s;
    } catch (const std::exception & e) {
        ::close(fd);
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_status m4_generate_image(m4_client_t * c, const char * adapter, const char * path, m4_result_t ** out) {
    if (!path) return fail(c, M4_ERR_INVALID_ARGUMENT, "null path");
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(c, M4_ERR_INVALID_ARGUMENT, std::string(path) + ": cannot open");
    try {
        m4::v1::Infer req;
        req.set_adapter(adapter ? adapter : "");
        req.set_path(m4::v1::PATH_GENERATOR);
        auto * in = req.add_inputs();
        in->set_modality("image");
        in->set_fd_attached(true);
        m4_status s = infer(c, req, {fd}, out);
        ::close(fd);
        if (s == M4_OK && !(*out)->result.has_image()) {
            m4_result_free(*out);
            *out = nullptr;
            return fail(c, M4_ERR_INTERNAL, "the daemon's reply carries no image");
        }
        return s;
    } catch (const std::exception & e) {
        ::close(fd);
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_status m4_draw_image(m4_client_t * c, const char * adapter, const char * text, m4_result_t ** out) {
    if (!text) return fail(c, M4_ERR_INVALID_ARGUMENT, "null text");
    try {
        m4::v1::Infer req;
        req.set_adapter(adapter ? adapter : "");
        req.set_path(m4::v1::PATH_FULL);
        req.add_inputs()->set_text(text);
        m4_status s = infer(c, req, {}, out);
        if (s == M4_OK && !(*out)->result.has_image()) {
            m4_result_free(*out);
            *out = nullptr;
            return fail(c, M4_ERR_INTERNAL, "the daemon's reply carries no image");
        }
        return s;
    } catch (const std::exception & e) {
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_status m4_synthesize(m4_client_t * c, const char * adapter, const char * text, m4_result_t ** out) {
    if (!text) return fail(c, M4_ERR_INVALID_ARGUMENT, "null text");
    try {
        m4::v1::Infer req;
        req.set_adapter(adapter ? adapter : "");
        req.set_path(m4::v1::PATH_GENERATOR);
        req.add_inputs()->set_text(text);
        m4_status s = infer(c, req, {}, out);
        if (s == M4_OK && !(*out)->result.has_audio()) {
            m4_result_free(*out);
            *out = nullptr;
            return fail(c, M4_ERR_INTERNAL, "the daemon's reply carries no audio");
        }
        return s;
    } catch (const std::exception & e) {
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_status m4_infer_signal(m4_client_t * c, const char * adapter, const char * modality, const float * values,
                          size_t count, m4_result_t ** out) {
    if (!modality || (!values && count)) return fail(c, M4_ERR_INVALID_ARGUMENT, "null argument");
    try {
        m4::v1::Infer req;
        req.set_adapter(adapter ? adapter : "");
        auto * in = req.add_inputs();
        in->set_modality(modality);
        in->mutable_signal()->add_shape(static_cast<int64_t>(count));
        in->mutable_signal()->mutable_values()->Add(values, values + count);
        return infer(c, req, {}, out);
    } catch (const std::exception & e) {
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_options_t * m4_options_create(void) {
    try {
        return new m4_options();
    } catch (...) {
        return nullptr;
    }
}
void m4_options_destroy(m4_options_t * o) {
    delete o;
}
void m4_options_set_max_new_tokens(m4_options_t * o, uint32_t n) {
    if (o) o->settings.set_max_new_tokens(n);
}
void m4_options_set_temperature(m4_options_t * o, float t) {
    if (o) o->settings.set_temperature(t);
}
void m4_options_set_top_k(m4_options_t * o, uint32_t k) {
    if (o) o->settings.set_top_k(k);
}
void m4_options_set_top_p(m4_options_t * o, float p) {
    if (o) o->settings.set_top_p(p);
}
void m4_options_set_seed(m4_options_t * o, uint64_t seed) {
    if (o) o->settings.set_seed(seed);
}
m4_status m4_options_add_stop(m4_options_t * o, const char * stop) {
    if (!o || !stop) return M4_ERR_INVALID_ARGUMENT;
    try {
        o->settings.add_stop(stop);
        return M4_OK;
    } catch (...) {
        return M4_ERR_INTERNAL;
    }
}

m4_status m4_options_add_choice(m4_options_t * o, const char * choice) {
    if (!o || !choice) return M4_ERR_INVALID_ARGUMENT;
    try {
        o->settings.add_choices(choice);
        return M4_OK;
    } catch (...) {
        return M4_ERR_INTERNAL;
    }
}
m4_status m4_options_set_json_schema(m4_options_t * o, const char * schema) {
    if (!o || !schema) return M4_ERR_INVALID_ARGUMENT;
    try {
        o->settings.set_json_schema(schema);
        return M4_OK;
    } catch (...) {
        return M4_ERR_INTERNAL;
    }
}

m4_status m4_generate(m4_client_t * c, const char * adapter, const char * text, const m4_options_t * o,
                      m4_result_t ** out) {
    if (!text) return fail(c, M4_ERR_INVALID_ARGUMENT, "null text");
    try {
        m4::v1::Infer req;
        if (o) req = o->settings;
        req.set_adapter(adapter ? adapter : "");
        req.clear_inputs();
        req.add_inputs()->set_text(text);
        return infer(c, req, {}, out);
    } catch (const std::exception & e) {
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_status m4_embed_text(m4_client_t * c, const char * text, m4_result_t ** out) {
    if (!text) return fail(c, M4_ERR_INVALID_ARGUMENT, "null text");
    try {
        m4::v1::Infer req;
        req.set_path(m4::v1::PATH_ENCODER);
        req.add_inputs()->set_text(text);
        return infer(c, req, {}, out);
    } catch (const std::exception & e) {
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}

m4_status m4_status_json(m4_client_t * c, char ** json) {
    if (!c || !c->impl || !json) return fail(c, M4_ERR_INVALID_ARGUMENT, "null argument");
    *json = nullptr;
    try {
        m4::v1::Response resp;
        m4_status s = finish(c, c->impl->status(), &resp);
        if (s != M4_OK) return s;
        std::string out;
        google::protobuf::util::JsonPrintOptions o;
        o.always_print_primitive_fields = true;
        if (!google::protobuf::util::MessageToJsonString(resp.status_reply(), &out, o).ok())
            return fail(c, M4_ERR_INTERNAL, "cannot render the status as JSON");
        *json = static_cast<char *>(std::malloc(out.size() + 1));
        if (!*json) return fail(c, M4_ERR_INTERNAL, "out of memory");
        std::memcpy(*json, out.c_str(), out.size() + 1);
        return M4_OK;
    } catch (const std::exception & e) {
        return fail(c, M4_ERR_INTERNAL, e.what());
    }
}
void m4_string_free(char * s) {
    std::free(s);
}

size_t m4_result_score_count(const m4_result_t * r) {
    return r ? static_cast<size_t>(r->result.scores_size()) : 0;
}
const char * m4_result_label(const m4_result_t * r, size_t i) {
    return r && i < m4_result_score_count(r) ? r->result.scores(static_cast<int>(i)).label().c_str() : "";
}
float m4_result_score(const m4_result_t * r, size_t i) {
    return r && i < m4_result_score_count(r) ? r->result.scores(static_cast<int>(i)).score() : 0.0f;
}
size_t m4_result_value_count(const m4_result_t * r) {
    return r ? static_cast<size_t>(r->result.values_size()) : 0;
}
const float * m4_result_values(const m4_result_t * r) {
    return r ? r->result.values().data() : nullptr;
}
const char * m4_result_text(const m4_result_t * r) {
    return r ? r->result.text().c_str() : "";
}
size_t m4_result_token_count(const m4_result_t * r) {
    return r ? static_cast<size_t>(r->result.tokens_size()) : 0;
}
const int32_t * m4_result_tokens(const m4_result_t * r) {
    return r ? r->result.tokens().data() : nullptr;
}
const char * m4_result_stop_reason(const m4_result_t * r) {
    return r ? r->result.stop_reason().c_str() : "";
}
size_t m4_result_image(const m4_result_t * r, const uint8_t ** png, uint32_t * width, uint32_t * height) {
    const bool has = r && r->result.has_image();
    if (png) *png = has ? reinterpret_cast<const uint8_t *>(r->result.image().png().data()) : nullptr;
    if (width) *width = has ? r->result.image().width() : 0;
    if (height) *height = has ? r->result.image().height() : 0;
    return has ? r->result.image().png().size() : 0;
}
size_t m4_result_audio(const m4_result_t * r, const uint8_t ** wav, uint32_t * sample_rate) {
    const bool has = r && r->result.has_audio();
    if (wav) *wav = has ? reinterpret_cast<const uint8_t *>(r->result.audio().wav().data()) : nullptr;
    if (sample_rate) *sample_rate = has ? r->result.audio().sample_rate() : 0;
    return has ? r->result.audio().wav().size() : 0;
}
void m4_result_free(m4_result_t * r) {
    delete r;
}

}  // extern "C"
