// The fixture of the adversarial suites (test_adversarial.cpp, test_hardening.cpp): a tiny
// firmware, an IMU adapter, fresh daemon directories, and helpers for well-behaved clients.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cmath>
#include <set>

#include "../unit/fixture.h"
#include "base/mapped_file.h"
#include "daemon_harness.h"

using namespace m4;
using namespace m4::test;

namespace m4::test {

constexpr uid_t kAppA = 2101, kAppB = 2102;

inline double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

class ServiceAdversarial : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = temp_dir() + "/adv";
        std::filesystem::create_directories(dir_);
        ::chmod(temp_dir().c_str(), 0755);
        ::chmod(dir_.c_str(), 0777);
        fw_ = dir_ + "/fw.m4fw";
        write_firmware(fw_, tiny_config(), 1);
        auto m = model::Model::load(fw_);
        ASSERT_TRUE(m.is_ok());
        adapter::Manifest man;
        man.modality  = model::Modality::Imu;
        man.labels    = {"walk", "run", "sit"};
        man.targets   = adapter::expand_targets((*m)->config(), man.path, man.modality, "attn").value();
        man.lora_rank = 2, man.lora_alpha = 4;
        imu_adapter_  = dir_ + "/imu.m4a";
        ASSERT_TRUE(adapter::write_random_adapter(imu_adapter_, **m, man, 7).is_ok());
    }
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to run clients as other uids (CI runs as root)";
    }
    static std::string fresh_dir(const std::string & name) {
        std::string d = dir_ + "/" + name;
        std::filesystem::remove_all(d);
        std::filesystem::create_directories(d);
        ::chmod(d.c_str(), 0777);
        return d;
    }
    static v1::Infer imu_request(const std::string & adapter, float nan_at = -1) {
        v1::Infer req;
        req.set_adapter(adapter);
        auto * in = req.add_inputs();
        in->set_modality("imu");
        for (int i = 0; i < 20 * 6; ++i) in->mutable_signal()->add_values(i == nan_at ? NAN : std::sin(0.1f * i));
        return req;
    }
    // A client of the well-behaved app: registers the IMU adapter as "mine".
    static std::unique_ptr<client::Client> good_client(const DaemonProcess & d) {
        auto c = client::Client::connect(d.socket());
        EXPECT_TRUE(c.is_ok());
        if (!c.is_ok()) return nullptr;
        auto r = (*c)->register_adapter("mine", read_file_bytes(imu_adapter_).value(), true);
        EXPECT_EQ(r->status(), v1::STATUS_OK) << r->message();
        return std::move(c).value();
    }
    // Sends an Infer of one fd input and returns the reply (or an error status).
    static Result<v1::Response> infer_fd(client::Client & c, int fd, const std::string & modality) {
        v1::Infer req;
        auto *    in = req.add_inputs();
        in->set_modality(modality);
        in->set_fd_attached(true);
        return c.infer(req, {fd});
    }

    static inline std::string dir_, fw_, imu_adapter_;
};

}  // namespace m4::test
