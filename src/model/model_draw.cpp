// The full path into the image decoder (docs/architecture.md, "Image decoder"): a scene
// description → backbone → projector → IMG-Dec → an image. Per sample, with T = (S/p)² queries:
//     x  = [BOS, tok_embed(text), queries]          [1 + n + T, C]   (queries: learned rows)
//     hn = backbone(x)                              causal: each query reads the whole prompt
//     d  = from_backbone(hn[1 + n :])               [T, P]           the decoder's input tokens
//     y  = out_proj(trunk(d))                       [T, P]           no residual: there is no input image
//     image = unpatchify(y)                         [S, S, 3]
#include <cstring>

#include "model/model.h"
#include "ops/ops.h"

namespace m4::model {

Status Model::validate_draw(std::span<const Request> batch) const {
    if (!config_.has_decoder(Modality::Image))
        return incompatible(
            "the full path over text ends in the image decoder, and the firmware has none "
            "(\"decoders.image\")");
    if (!config_.has_draw_path())
        return incompatible(
            "the firmware's image decoder has no projector from the backbone "
            "(\"decoders.image.from_backbone\"): the full path over text cannot end in it");
    const int64_t T = config_.image_decoder->tokens();
    for (size_t i = 0; i < batch.size(); ++i) {
        const Request & r = batch[i];
        auto item = [&](const std::string & m) { return invalid_argument("item " + std::to_string(i) + ": " + m); };
        if (!r.signal.empty()) return item("the full path into the image decoder takes text only");
        if (r.tokens.empty()) return item("text input is empty");
        for (int32_t id : r.tokens)
            if (id < 0 || id >= config_.text.vocab_size)
                return item("token id " + std::to_string(id) + " out of range");
        const int64_t len = 1 + static_cast<int64_t>(r.tokens.size()) + T;
        if (len > config_.backbone.max_seq)
            return item("sequence of " + std::to_string(len) + " positions (prompt + " + std::to_string(T) +
                        " decoder queries) exceeds max_seq " + std::to_string(config_.backbone.max_seq));
        if (r.adapter && r.adapter->head.type != HeadType::None)
            return incompatible("item " + std::to_string(i) +
                                ": an adapter with a head cannot run on the full path into the image decoder");
    }
    return Status::ok();
}

void Model::run_draw(std::span<const Request> batch, Output * outs) const {
    const auto & dc = *config_.image_decoder;
    const auto & dw = weights_.image_decoder;
    const int64_t B = static_cast<int64_t>(batch.size()), T = dc.tokens(), P = dc.patch_dim(), S = dc.image_size,
                  C = config_.backbone.width;
    std::vector<SequenceSlice> seqs;
    int64_t rows = 0;
    for (int64_t b = 0; b < B; ++b) {
        const int64_t n = 1 + static_cast<int64_t>(batch[b].tokens.size()) + T;
        seqs.push_back({rows, n, nullptr, batch[b].adapter});
        rows += n;
    }
    std::vector<float> x(rows * C), hn(rows * C), q(B * T * C), d(B * T * P), y(B * T * P);
    for (int64_t b = 0; b < B; ++b) {
        float * xb          = x.data() + seqs[b].row_begin * C;
        const auto & tokens = batch[b].tokens;
        const int64_t n     = static_cast<int64_t>(tokens.size());
        ops::gather(weights_.backbone.tok_embed, &config_.text.bos_id, 1, xb);
        ops::gather(weights_.backbone.tok_embed, tokens.data(), n, xb + C);
        std::memcpy(xb + (1 + n) * C, dw.queries, static_cast<size_t>(T * C) * 4);
    }
    backbone_forward(config_.backbone, weights_.backbone, x.data(), rows, seqs, hn.data());
    std::vector<RowSegment> seg;
    for (int64_t b = 0; b < B; ++b) {
        std::memcpy(q.data() + b * T * C, hn.data() + (seqs[b].row_begin + seqs[b].n - T) * C,
                    static_cast<size_t>(T * C) * 4);
        seg.push_back({b * T, (b + 1) * T, batch[b].adapter});
    }
    linear(dw.from_backbone, q.data(), B * T, d.data(), seg);
    image_decoder_forward(dc, dw, d.data(), B, seg, y.data());
    for (int64_t b = 0; b < B; ++b) {
        outs[b].image.resize(S * S * 3);
        outs[b].image_size = S;
        image_unpatchify(dc, y.data() + b * T * P, outs[b].image.data());
    }
}

}  // namespace m4::model
