// A/B firmware slots: <state>/firmware/{a,b}.m4fw and the name of the active one in
// <state>/firmware/active (written atomically). A new firmware goes into the inactive slot; the
// switch is one atomic rename; rollback switches back.
#pragma once

#include <string>

#include "base/status.h"

namespace m4::svc {

class FirmwareSlots {
  public:
    explicit FirmwareSlots(std::string state_dir) : dir_(std::move(state_dir) + "/firmware") {}
    Status      open();                      // creates the directory
    bool        has_active() const;
    std::string active() const;              // "a" or "b" ("" when none)
    std::string inactive() const { return active() == "a" ? "b" : "a"; }
    std::string path(const std::string & slot) const { return dir_ + "/" + slot + ".m4fw"; }
    std::string staging_path() const { return dir_ + "/.staging.m4fw"; }
    // Moves the staged file into `slot` (durably).
    Status      commit_staging(const std::string & slot);
    Status      activate(const std::string & slot);

  private:
    std::string dir_;
};

}  // namespace m4::svc
