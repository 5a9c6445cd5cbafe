"""Small DICOM files written at test time with pydicom, for decoder and predict tests."""

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def write_dicom(path, stored, *, photometric="MONOCHROME2", bits_stored=12, signed=False,
                syntax=ExplicitVRLittleEndian, pixel_data=None, **extra):
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = syntax
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    for key, value in extra.items():
        setattr(ds, key, value)
    if pixel_data is None:
        pixel_data = stored.astype("<i2" if signed else "<u2").tobytes()
    ds.PixelData = pixel_data
    ds.save_as(path, enforce_file_format=True)
    return path
