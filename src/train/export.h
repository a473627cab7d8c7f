// Export of a training run: the adapter (.m4a, adapter mode) or a new firmware (.m4fw, full mode).
//
//     M4_RETURN_IF_ERROR(export_adapter(tm, "task.m4a", {.name = "imu-activity", .metrics = metrics}));
//     M4_RETURN_IF_ERROR(export_firmware(tm, "pretrained.m4fw", {.provenance = recipe}));
// Both write atomically (temp file, fsync, rename: format::ContainerWriter::write).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "adapter/adapter.h"
#include "train/train_model.h"

namespace m4::train {

struct AdapterExport {
    std::string name       = "adapter";
    std::string version    = "1.0.0";
    nlohmann::json metrics = nlohmann::json::object();  // the validation metrics, into the manifest
};

// The trained LoRA pairs and head of the (single) task, bound to the base firmware's fingerprint;
// a language-modelling task becomes a `generate` adapter (no head).
Status export_adapter(const TrainModel & tm, const std::string & path, const AdapterExport & info);

// The head of the run's (single) task as an adapter writes it (owned copies), and its manifest
// fields (type, pool, dims, hidden width). No head: empty tensors, the manifest untouched.
adapter::HeadTensors export_head(const TrainModel & tm, const TaskSpec & t, adapter::Manifest * m);

struct FirmwareExport {
    std::string name;                                      // empty: the base firmware's name
    DType weight_dtype        = DType::F32;                // linear weights and tok_embed: f32 | bf16 | i8
    nlohmann::json provenance = nlohmann::json::object();  // merged into the header's "provenance"
};

// The base firmware's header and tokenizer with every model tensor from the trained masters.
Status export_firmware(const TrainModel & tm, const std::string & path, const FirmwareExport & info);

}  // namespace m4::train
