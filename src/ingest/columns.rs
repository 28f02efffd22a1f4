//! The SBIR.gov `award_data.csv` columns and how a file's header row maps onto them: by name,
//! ignoring case, spacing and punctuation (so the API's `award_title` is `Award Title`), in
//! any order, with the other spellings of every vintage and extra columns tolerated.

use super::IngestError;
use crate::io::json;
use std::path::Path;

macro_rules! columns {
    ($($var:ident => $header:literal $(| $alias:literal)*),* $(,)?) => {
        /// A column of the awards bulk file.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Col { $($var),* }

        impl Col {
            /// Every column, in the bulk file's order.
            pub const ALL: &'static [Col] = &[$(Col::$var),*];

            /// The header as SBIR.gov writes it.
            pub fn header(self) -> &'static str {
                match self { $(Col::$var => $header),* }
            }

            /// Other spellings seen in older extracts (already normalised).
            fn aliases(self) -> &'static [&'static str] {
                match self { $(Col::$var => &[$($alias),*]),* }
            }
        }
    };
}

columns! {
    Company => "Company" | "companyname" | "firm",
    AwardTitle => "Award Title" | "title",
    Agency => "Agency",
    Branch => "Branch",
    Phase => "Phase",
    Program => "Program",
    AgencyTrackingNumber => "Agency Tracking Number",
    Contract => "Contract" | "contractnumber",
    ProposalAwardDate => "Proposal Award Date" | "awarddate" | "awardstartdate",
    ContractEndDate => "Contract End Date" | "awardclosedate" | "contractenddate",
    SolicitationNumber => "Solicitation Number",
    SolicitationYear => "Solicitation Year",
    SolicitationCloseDate => "Solicitation Close Date",
    ProposalReceiptDate => "Proposal Receipt Date",
    DateOfNotification => "Date of Notification",
    TopicCode => "Topic Code",
    AwardYear => "Award Year" | "year",
    AwardAmount => "Award Amount" | "amount" | "awardamountusd",
    Uei => "UEI",
    Duns => "Duns" | "dunsnumber" | "duns9",
    HubzoneOwned => "HUBZone Owned" | "hubzone",
    SociallyEconomicallyDisadvantaged => "Socially and Economically Disadvantaged" | "sociallyeconomicallydisadvantaged" | "disadvantaged",
    WomanOwned => "Woman Owned" | "womenowned" | "womanowned" | "womenownedbusiness",
    NumberEmployees => "Number Employees" | "numberofemployees",
    CompanyWebsite => "Company Website" | "website" | "companyurl",
    Address1 => "Address1",
    Address2 => "Address2",
    City => "City",
    State => "State",
    Zip => "Zip" | "zipcode",
    Abstract => "Abstract",
    ContactName => "Contact Name",
    ContactTitle => "Contact Title",
    ContactPhone => "Contact Phone",
    ContactEmail => "Contact Email",
    PiName => "PI Name",
    PiTitle => "PI Title",
    PiPhone => "PI Phone",
    PiEmail => "PI Email",
    RiName => "RI Name",
    RiPocName => "RI POC Name",
    RiPocPhone => "RI POC Phone",
}

/// Columns a file must have; rows missing a value in one of them are rejected.
pub const REQUIRED: &[Col] = &[
    Col::Company,
    Col::AwardTitle,
    Col::Agency,
    Col::Phase,
    Col::Program,
    Col::AwardYear,
    Col::AwardAmount,
];

/// `"Award Title "` → `"awardtitle"`: lower-case letters and digits only.
pub fn normalise_header(h: &str) -> String {
    h.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Where each known column sits in a file's rows.
#[derive(Debug, Clone)]
pub struct HeaderMap {
    /// Field index per [`Col`] (in `Col::ALL` order); `None` when the file lacks it.
    index: Vec<Option<usize>>,
    /// The file's own header names, for reject records.
    pub names: Vec<String>,
    /// Optional columns the file lacks.
    pub missing_optional: Vec<String>,
    /// File columns that are not part of the bulk layout.
    pub extra: Vec<String>,
    /// The JSON reader's field saying why a record is not an object (see `io::json`).
    pub invalid_record: Option<usize>,
    /// True when every header column is a known column (no extra or JSON reader field), so
    /// a row's raw bytes hold nothing but mapped values.
    pub all_mapped: bool,
}

impl HeaderMap {
    /// Maps `headers` (already decoded) onto the known columns.
    pub fn resolve(path: &Path, headers: &[String]) -> Result<Self, IngestError> {
        let norm: Vec<String> = headers.iter().map(|h| normalise_header(h)).collect();
        let mut used = vec![false; headers.len()];
        let mut index = Vec::with_capacity(Col::ALL.len());
        for &col in Col::ALL {
            let want = normalise_header(col.header());
            // The current spelling wins over an older one when a file has both.
            let free = |i: &usize| !used[*i];
            let pos = (0..norm.len())
                .filter(free)
                .find(|&i| norm[i] == want)
                .or_else(|| {
                    (0..norm.len())
                        .filter(free)
                        .find(|&i| col.aliases().contains(&norm[i].as_str()))
                });
            if let Some(i) = pos {
                used[i] = true;
            }
            index.push(pos);
        }
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|c| index[**c as usize].is_none())
            .map(|c| c.header().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(IngestError::MissingColumns {
                path: path.to_path_buf(),
                missing,
                found: headers.to_vec(),
            });
        }
        let missing_optional = Col::ALL
            .iter()
            .filter(|c| index[**c as usize].is_none())
            .map(|c| c.header().to_string())
            .collect();
        let synthetic = |h: &str| h == json::OTHER_KEYS || h == json::INVALID_RECORD;
        let extra = headers
            .iter()
            .zip(&used)
            .filter(|(h, u)| !**u && !synthetic(h))
            .map(|(h, _)| h.clone())
            .collect();
        Ok(Self {
            index,
            names: headers.to_vec(),
            missing_optional,
            extra,
            invalid_record: headers.iter().position(|h| h == json::INVALID_RECORD),
            all_mapped: used.iter().all(|u| *u),
        })
    }

    /// The field index of `col` in a row, if the file has that column.
    pub fn position(&self, col: Col) -> Option<usize> {
        self.index[col as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matches_case_spacing_order_and_extras() {
        let h = strings(&[
            "award amount",
            "AWARD_YEAR",
            "Extra",
            "program",
            "PHASE",
            "agency",
            "Award  Title",
            "company",
        ]);
        let m = HeaderMap::resolve(Path::new("x.csv"), &h).unwrap();
        assert_eq!(m.position(Col::AwardAmount), Some(0));
        assert_eq!(m.position(Col::Company), Some(7));
        assert_eq!(m.position(Col::Abstract), None);
        assert_eq!(m.extra, vec!["Extra".to_string()]);
        assert!(m.missing_optional.contains(&"Abstract".to_string()));
    }

    #[test]
    fn missing_required_column_is_named() {
        let h = strings(&[
            "Company",
            "Award Title",
            "Agency",
            "Phase",
            "Program",
            "Award Year",
        ]);
        let err = HeaderMap::resolve(Path::new("x.csv"), &h).unwrap_err();
        assert!(err.to_string().contains("Award Amount"), "{err}");
    }
}
